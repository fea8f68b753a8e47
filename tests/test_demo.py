"""The README's main job: the digits demo."""

from skdeepcluster import demo


def test_demo_runs_and_reports_every_method(capsys):
    rows = demo.main(["--seeds", "1"])
    by_name = {row["method"]: row for row in rows}
    deep = ("AEKMeans", "ConcreteKMeans", "DEC", "IDEC", "DCEC")
    assert {"KMeans", "ShallowConcreteKMeans", *deep} <= set(by_name)
    out = capsys.readouterr().out
    assert "| ShallowConcreteKMeans" in out and "ACC" in out
    # one progress line per fit, printed before the table
    assert out.index("  KMeans (seed 0): ACC") < out.index("| method")
    assert "  DCEC (seed 0): ACC" in out
    assert " ± " not in out  # one seed: plain values
    ours, ref = by_name["ShallowConcreteKMeans"], by_name["KMeans"]
    # Same k-means objective: inertia within 0.5 % of scikit-learn's, ACC close to its 0.79.
    assert ours["inertia_mean"] <= 1.005 * ref["inertia_mean"]
    assert ours["acc_mean"] >= 0.75
    # The deep estimators learn something on digits (one seed, short pretraining).
    for name in deep:
        assert by_name[name]["acc_mean"] >= 0.7, name
        assert by_name[name]["nmi_mean"] >= 0.7, name
