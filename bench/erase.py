"""Benchmarks of ERASE's pieces: deletion cost of quantized k-means vs re-clustering
(`clustering`, the default), and the in-context accuracy of the generated tasks (`tasks`).

clustering:

Table 1: for n = 1e3, 1e4, 1e5 synthetic unit-norm embeddings (a mixture of `k` Gaussians in
`d` dimensions), the time of one fit (= the naive deletion: re-run the clustering on D minus x),
the mean / median / p95 time of a deletion through the certificate (re-clustering included when
it happens), the re-clustering rate, and the ratio naive / certified (higher = ERASE cheaper).
Goal: the mean deletion time flat in n within 2x.
Table 2: the re-clustering rate vs epsilon at one n (exact certificate, and the reference's).
Table 3: the re-clustering rate and mean deletion time vs the dimension of ERASE's fixed random
projection (`lib.methods.erase.Erase.project`: unit norm, then a seeded Gaussian matrix) at one n
and epsilon scaled to the projected spread; `--projection D` applies it in tables 1 and 2 too.
Why it matters: a deletion moves a cluster mean by about spread/n_cluster per coordinate, and
each of the d coordinates (of each of T iterations) can cross a grid boundary, so the failure
rate grows with d (about sqrt(d) at a fixed ratio of epsilon to the spread).

Run (single-threaded BLAS, as on the study machine; about 1-2 minutes on an idle core):

    python bench/erase.py                                   # defaults below
    python bench/erase.py clustering --dim 576              # LLM-sized embeddings (~4 min)

tasks: label-scoring accuracy of the embedded model (bf16 autocast on CPU) on every generated
task, zero-shot and with k random demonstrations shared by all test queries (mean and range over
`--sets` random demonstration sets), next to chance:

    python bench/erase.py tasks                              # ~10-20 min on a busy 2-core CPU
    python bench/erase.py tasks --n-test 60 --shots 0 16     # quicker
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from lib.algorithms.qkmeans import QuantizedKMeans  # noqa: E402
from lib.methods.erase import Erase  # noqa: E402


def synthetic_embeddings(n: int, d: int, k: int, seed: int = 0) -> np.ndarray:
    """n unit vectors around k random directions (per-coordinate noise 0.5/sqrt(d))."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) / np.sqrt(d)
    X = centres[rng.integers(k, size=n)] + rng.normal(scale=0.5 / np.sqrt(d), size=(n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def deletion_times(
    X: np.ndarray, params: dict, n_deletions: int, seed: int
) -> tuple[QuantizedKMeans, float, np.ndarray, float, float]:
    """Fit, then delete `n_deletions` random rows; returns (model, fit s, per-deletion s, rate,
    mean flops)."""
    start = time.perf_counter()
    model = QuantizedKMeans(**params, seed=seed).fit(X)
    fit_s = time.perf_counter() - start
    rng = np.random.default_rng(seed + 1)
    # at most a quarter of the rows, so that the last deletions see about the same n
    victims = rng.choice(len(X), size=min(n_deletions, len(X) // 4), replace=False)
    reports = [model.delete(int(i)) for i in victims]
    seconds = np.array([r.seconds for r in reports])
    return model, fit_s, seconds, model.recluster_rate, float(np.mean([r.flops for r in reports]))


def tasks_main(argv: list[str]) -> None:
    """Zero-shot and k-shot accuracy of the generated tasks on the embedded model."""
    parser = argparse.ArgumentParser(prog="erase.py tasks")
    parser.add_argument("--tasks", nargs="+", default=None, help="default: all of TASKS")
    parser.add_argument("--shots", type=int, nargs="+", default=[0, 4, 8, 16])
    parser.add_argument("--sets", type=int, default=3, help="random demonstration sets per k")
    parser.add_argument("--n-train", type=int, default=200)
    parser.add_argument("--n-test", type=int, default=100)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    from lib.benchmarks.icl import icl_accuracy
    from lib.data.tasks import TASKS, build_task, random_demonstrations
    from lib.models import load_model

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    model, tokenizer = load_model(args.model, dtype="float32", device="cpu")
    names = args.tasks or list(TASKS)
    print(
        f"# label-scoring accuracy, {args.model}, bf16 autocast, {args.n_test} test examples, "
        f"{args.sets} random demonstration sets per k (mean [min, max])"
    )
    print(f"{'task':<22} {'chance':>6} " + " ".join(f"{f'k={k}':>18}" for k in args.shots))
    for name in names:
        task = build_task(name, n_train=args.n_train, n_test=args.n_test, seed=args.seed)
        cells = []
        start = time.perf_counter()
        for k in args.shots:
            sets = 1 if k == 0 else args.sets
            with torch.autocast("cpu", dtype=torch.bfloat16):
                accs = [
                    icl_accuracy(model, tokenizer, task, random_demonstrations(task, k, seed=s))
                    for s in range(args.seed, args.seed + sets)
                ]
            cells.append(f"{np.mean(accs):.3f} [{min(accs):.2f},{max(accs):.2f}]")
        print(
            f"{name:<22} {1 / task.n_labels:>6.3f} "
            + " ".join(f"{c:>18}" for c in cells)
            + f"   ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )


def main() -> None:
    import sys

    if len(sys.argv) > 1 and sys.argv[1] == "tasks":
        tasks_main(sys.argv[2:])
        return
    if len(sys.argv) > 1 and sys.argv[1] == "clustering":
        del sys.argv[1]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--epsilon", type=float, default=0.1)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--gamma", type=float, default=0.2)
    parser.add_argument("--deletions", type=int, default=1000)
    parser.add_argument("--eps-grid", type=float, nargs="+", default=[0.01, 0.02, 0.05, 0.1, 0.2])
    parser.add_argument("--eps-n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--projection", type=int, default=0, help="ERASE projection (0: none)")
    parser.add_argument("--proj-grid", type=int, nargs="+", default=[0, 64, 16, 8])
    parser.add_argument("--proj-n", type=int, default=10_000)
    args = parser.parse_args()

    def features(X: np.ndarray, dim: int) -> np.ndarray:
        return Erase(projection_dim=dim).project(X) if dim else X

    params = {
        "n_clusters": args.k,
        "epsilon": args.epsilon,
        "n_iter": args.iters,
        "gamma": args.gamma,
    }
    print(
        f"# quantized k-means deletion: d={args.dim} k={args.k} eps={args.epsilon} "
        f"T={args.iters} gamma={args.gamma} projection={args.projection or 'none'}, "
        f"{args.deletions} random deletions per n, BLAS threads={os.environ['OMP_NUM_THREADS']}"
    )
    header = (
        f"{'n':>8} {'refit_s':>9} {'del_mean_s':>11} {'del_med_s':>10} {'del_p95_s':>10} "
        f"{'recluster':>9} {'iters':>5} {'flops/del':>10} {'refit/del':>9}"
    )
    print(header)
    means = []
    for n in args.sizes:
        X = features(synthetic_embeddings(n, args.dim, args.k, seed=args.seed), args.projection)
        model, fit_s, secs, rate, flops = deletion_times(X, params, args.deletions, args.seed)
        # The naive deletion: re-run the whole clustering on D minus x (fresh fit, timed).
        start = time.perf_counter()
        QuantizedKMeans(**params, seed=args.seed + 7).fit(X[1:])
        refit_s = time.perf_counter() - start
        means.append(secs.mean())
        print(
            f"{n:>8} {refit_s:>9.4f} {secs.mean():>11.6f} {np.median(secs):>10.6f} "
            f"{np.quantile(secs, 0.95):>10.6f} {rate:>9.3f} {model.n_iter_:>5} {flops:>10.3g} "
            f"{refit_s / secs.mean():>9.1f}"
        )
        del X, model
    print(
        f"# mean deletion time, largest / smallest over n: {max(means) / min(means):.2f}x "
        "(goal <= 2x)"
    )

    print(f"\n# re-clustering rate vs epsilon at n={args.eps_n} ({args.deletions} deletions)")
    print(f"{'epsilon':>8} {'exact':>7} {'reference':>9} {'del_mean_s':>11} {'final_sse':>10}")
    X = features(
        synthetic_embeddings(args.eps_n, args.dim, args.k, seed=args.seed), args.projection
    )
    for eps in args.eps_grid:
        row = {}
        for certificate in ("exact", "reference"):
            p = {**params, "epsilon": eps, "certificate": certificate}
            model, _, secs, rate, _ = deletion_times(X, p, args.deletions, args.seed)
            row[certificate] = (rate, secs.mean(), model.history()["sse"][model.best_iter_])
        sse = row["exact"][2] / model.n_active_
        print(
            f"{eps:>8.3f} {row['exact'][0]:>7.3f} {row['reference'][0]:>9.3f} "
            f"{row['exact'][1]:>11.6f} {sse:>10.4f}"
        )

    print(
        f"\n# re-clustering vs projection dimension at n={args.proj_n}, epsilon = "
        f"{args.epsilon} x (mean per-coordinate std of the features) / 0.1"
    )
    print(
        f"{'proj_dim':>8} {'d':>5} {'epsilon':>9} {'recluster':>9} {'del_mean_s':>11} "
        f"{'refit_s':>8}"
    )
    raw = synthetic_embeddings(args.proj_n, args.dim, args.k, seed=args.seed)
    for dim in args.proj_grid:
        X = features(raw, dim)
        eps = args.epsilon / 0.1 * float(X.std(axis=0).mean())  # the same ratio to the spread
        p = {**params, "epsilon": eps}
        _, fit_s, secs, rate, _ = deletion_times(X, p, args.deletions, args.seed)
        print(
            f"{dim or 'none':>8} {X.shape[1]:>5} {eps:>9.4f} {rate:>9.3f} {secs.mean():>11.6f} "
            f"{fit_s:>8.3f}"
        )


if __name__ == "__main__":
    main()
