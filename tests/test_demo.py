"""The README's main job: the digits demo."""

import pytest

from skdeepcluster import demo
from skdeepcluster.metrics import cluster_accuracy

DEEP = ("AEKMeans", "ConcreteKMeans", "DEC", "IDEC", "DCEC")


def test_demo_runs_and_reports_every_method(capsys, monkeypatch):
    # The demo's plumbing, with the deep fits cut short (2 pretraining epochs and at most 2
    # clustering epochs) so that the default suite stays fast; the slow test below runs the
    # real demo and checks what the deep estimators learn.
    real_deep = demo._deep

    def short(cls, **params):
        if "max_iter" in cls().get_params():
            params["max_iter"] = 2
        return real_deep(cls, **params)

    monkeypatch.setattr(demo, "DEMO_PRETRAIN_EPOCHS", 2)
    monkeypatch.setattr(demo, "_deep", short)
    rows = demo.main(["--seeds", "1", "--figure", "none"])
    by_name = {row["method"]: row for row in rows}
    assert {"KMeans", "ShallowConcreteKMeans", *DEEP} <= set(by_name)
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
    _, y = demo.load_data()
    for name in DEEP:  # the short fits ran, and the table reports their own labels
        model = by_name[name]["model"][-1]
        assert model.pretrain_epochs_ == 2 and model.n_iter_ <= 2, name
        assert by_name[name]["acc_mean"] == pytest.approx(
            cluster_accuracy(y, model.labels_)), name


@pytest.mark.slow
def test_demo_deep_estimators_learn_digits():
    # The real demo (50 pretraining epochs): every deep estimator learns digits' classes.
    rows = demo.main(["--seeds", "1", "--figure", "none", "--methods", *DEEP])
    by_name = {row["method"]: row for row in rows}
    for name in DEEP:
        assert by_name[name]["acc_mean"] >= 0.7, name
        assert by_name[name]["nmi_mean"] >= 0.7, name


def test_figure_of_the_accuracies_and_an_embedding(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import matplotlib.image

    from skdeepcluster import AEKMeans

    def tiny(seed):
        return AEKMeans(10, hidden_dims=(32,), pretrain_epochs=2, random_state=seed)

    path = tmp_path / "demo.png"
    X, y = demo.load_data()
    rows = [demo.evaluate("KMeans", dict(demo.BASELINES)["KMeans"], X, y, [0]),
            demo.evaluate("tiny AEKMeans", tiny, X, y, [0])]
    assert demo.save_figure(rows, X, path) == "tiny AEKMeans"
    image = matplotlib.image.imread(path)
    assert image.shape[1] > 2 * image.shape[0]  # three panels side by side
    # the command line saves it where --figure says and names it
    demo.main(["--methods", "KMeans", "--figure", str(tmp_path / "k.png")])
    assert (tmp_path / "k.png").exists()
    assert f"figure: {tmp_path / 'k.png'} (ACC per method)" in capsys.readouterr().out
