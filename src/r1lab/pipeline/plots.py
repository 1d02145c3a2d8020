"""Training curves as PNG: reward, held-out pass@1, response length, reflection rates, language consistency."""

from __future__ import annotations

from pathlib import Path

PANELS = [
    ("reward", "reward (train)"),
    ("eval/pass@1", "held-out pass@1 (T=0.6)"),
    ("response_len_mean", "response length (tokens)"),
    ("reflection_rate", "responses with reflection words"),
    ("effective_reflection_rate", "responses with an effective self-correction"),
    ("language_consistency", "language consistency"),
    ("format_rate", "format rate (train)"),
]

# the reward-hacking monitor of the final stage (train/monitor.py): the proxy next to the gold it stands for
MONITOR_PANELS = [
    ("monitor/preference", "preference-model score (proxy)"),
    ("monitor/general_gold", "gold accuracy of the same general samples"),
    ("eval/pass@1", "held-out pass@1 (T=0.6)"),
]



def plot_curves(series: dict[str, list[dict]], out_png: str | Path, panels=PANELS, title: str = "") -> Path:
    """One subplot per metric; one line per run in ``series`` ({label: metrics rows})."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 3
    rows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, (key, label) in zip(axes.flat, panels):
        for name, rows_ in series.items():
            pts = [(r["step"], r[key]) for r in rows_ if key in r and r[key] is not None]
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, marker="o" if len(xs) < 15 else None, markersize=3, label=name)
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("step", fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    if len(series) > 1:
        axes.flat[0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_png.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(out_png)
    return out_png
