"""Report figures (benchmark/report/plots.py via build.py) on reports whose first metric has no
per-user values."""

from __future__ import annotations

from report_records import planted_ranks, write_run
from test_report_families import report_of


def test_slice_figure_is_drawn_when_the_first_metric_is_not_per_user(tmp_path):
    # coverage@10 is one number per run (no per-user column): the slice figure falls back to the first
    # metric that has per-user values instead of silently drawing nothing for --slice history.
    for seed in (0, 1):
        write_run(tmp_path, "ds-a", "pop", seed, planted_ranks(60, 0.0, seed))
        write_run(tmp_path, "ds-a", "sasrec", seed, planted_ranks(60, 1.0, seed))
    report = report_of(tmp_path, metrics=["coverage@10", "ndcg@10"], slices=["history"])
    assert "slice_history" in report.figures
    points, title = report.figures["slice_history"]
    assert set(points.metric) == {"ndcg@10"} and title.startswith("ndcg@10 by history slice")


def test_twenty_models_get_twenty_distinct_styles():
    from benchmark.report.plots import model_styles

    names = [f"m{i:02d}" for i in range(20)]
    styles = model_styles(names, {"m00", "m01"})
    assert len({(s.colour, s.marker) for s in styles.values()}) == 20
    assert len({s.colour for s in styles.values()}) == 20  # colour alone tells them apart too
    assert styles["m00"].linestyle == "--" and styles["m02"].linestyle == "-"


def _drawn(fig) -> dict[str, tuple[str, str]]:
    """model -> (colour, marker) of every errorbar drawn in the figure, checked consistent across its panels."""
    from matplotlib.colors import to_hex

    seen: dict[str, tuple[str, str]] = {}
    for ax in fig.axes:
        for container in ax.containers:
            line = container.lines[0]
            style = (to_hex(line.get_color()), line.get_marker())
            assert seen.setdefault(container.get_label(), style) == style, container.get_label()
    return seen


def test_one_style_per_model_across_every_figure_and_one_legend(tmp_path):
    from benchmark.report.plots import efficiency_figure, slice_figure

    models = [("pop", 0.0), ("itemknn", 0.2), ("gru4rec", 0.5), ("sasrec", 1.0), ("bert4rec", 0.8)]
    for ds, only in (("ds-a", None), ("ds-b", {"pop", "sasrec", "bert4rec"})):  # ds-b: a subset, other order in panels
        for model, quality in models:
            if only is None or model in only:
                write_run(tmp_path, ds, model, 0, planted_ranks(60, quality, 0))
    report = report_of(tmp_path, slices=["history", "popularity"], efficiency=True)
    figures = {stem: (efficiency_figure if stem == "efficiency" else slice_figure)(points, title, report.styles)
               for stem, (points, title) in report.figures.items()}
    assert set(figures) == {"slice_history", "slice_popularity", "efficiency"}
    expected = {m: (s.colour, s.marker) for m, s in report.styles.items()}
    assert len(set(expected.values())) == len(models)
    for stem, fig in figures.items():
        drawn = _drawn(fig)
        assert drawn == expected, stem  # every model, in its one report-wide style
        assert len(fig.legends) == 1 and not any(ax.get_legend() for ax in fig.axes), stem
        assert [t.get_text() for t in fig.legends[0].get_texts()] == list(report.styles), stem
        assert not any(ax.texts for ax in fig.axes), stem  # no text labels beside points (they overlapped)
