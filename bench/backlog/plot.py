"""Plots the backlog benchmark's RSS samples (bench/backlog/backlog.bench.ts runs it in the bench venv).

Reads {"title", "limitMiB", "series": [{"label", "points": [[seconds, MiB], ...]}]} on stdin and writes a PNG to
the path given as the only argument. matplotlib's Agg backend: no display needed.
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    data = json.load(sys.stdin)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    for s in data["series"]:
        xs = [p[0] for p in s["points"]]
        ys = [p[1] for p in s["points"]]
        ax.plot(xs, ys, label=s["label"], linewidth=1.2)
    ax.axhline(data["limitMiB"], color="red", linestyle="--", linewidth=1, label=f"target: under {data['limitMiB']} MiB")
    ax.set_xlabel("seconds since the stage started")
    ax.set_ylabel("RSS of the stage process (MiB)")
    ax.set_ylim(bottom=0)
    ax.set_title(data["title"])
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(sys.argv[1])


if __name__ == "__main__":
    main()
