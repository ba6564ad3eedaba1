"""Plots the million-personas run's time series (bench/million.ts runs it in the bench venv).

Reads {"title", "throughput": [{"label", "points": [[seconds, per second], ...]}],
"rss": [{"label", "points": [[seconds, MiB], ...]}]} on stdin and writes a PNG, throughput above and the RSS
of every process below on the same time axis, to the path given as the only argument. matplotlib's Agg
backend: no display needed.
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def draw(ax, series, ylabel: str, scale: float) -> None:
    for s in series:
        ax.plot([p[0] / scale for p in s["points"]], [p[1] for p in s["points"]], label=s["label"], linewidth=1.0)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=7)


def main() -> None:
    data = json.load(sys.stdin)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), dpi=100, sharex=True)
    # A run of hours reads better in minutes; a smoke run of seconds in seconds.
    end = max((p[0] for s in data["rss"] for p in s["points"]), default=0)
    scale, unit = (60.0, "minutes") if end > 600 else (1.0, "seconds")
    draw(top, data["throughput"], "personas indexed per second", scale)
    draw(bottom, data["rss"], "RSS (MiB)", scale)
    bottom.set_xlabel(f"{unit} since the first seeds were written")
    top.set_title(data["title"])
    fig.tight_layout()
    fig.savefig(sys.argv[1])


if __name__ == "__main__":
    main()
