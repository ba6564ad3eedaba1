"""datasketch's side of the dedup benchmark (bench/dedup/dedup.bench.ts runs it in the bench venv).

Reads a JSON job on stdin: the documents as lists of shingles (the same sets persona/minhash.ts hashes), the
permutation count, the LSH split (bands, rows) and the pairs whose Jaccard to estimate. Times, with
time.perf_counter and nothing else in the loop, (1) one MinHash per document through update_batch (datasketch's
vectorised path), (2) inserting every signature into a MinHashLSH with exactly that split, and (3) querying it
with every signature. Writes one JSON object on stdout.
"""

import json
import sys
import time

import datasketch
from datasketch import MinHash, MinHashLSH


def main() -> None:
    job = json.load(sys.stdin)
    docs = [[s.encode("utf-8") for s in d] for d in job["docs"]]
    perms = job["permutations"]

    start = time.perf_counter()
    sigs = []
    for d in docs:
        m = MinHash(num_perm=perms, seed=1)
        m.update_batch(d)
        sigs.append(m)
    signature_ms = (time.perf_counter() - start) * 1000

    lsh = MinHashLSH(num_perm=perms, params=(job["bands"], job["rows"]))
    start = time.perf_counter()
    for i, m in enumerate(sigs):
        lsh.insert(i, m, check_duplication=False)
    insert_ms = (time.perf_counter() - start) * 1000

    start = time.perf_counter()
    candidates = 0
    for m in sigs:
        candidates += len(lsh.query(m))
    query_ms = (time.perf_counter() - start) * 1000

    estimates = [sigs[a].jaccard(sigs[b]) for a, b in job["pairs"]]
    json.dump(
        {
            "version": datasketch.__version__ if hasattr(datasketch, "__version__") else "unknown",
            "signatureMs": signature_ms,
            "insertMs": insert_ms,
            "queryMs": query_ms,
            "candidates": candidates,
            "estimates": estimates,
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
