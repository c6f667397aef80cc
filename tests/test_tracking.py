"""`--track mlflow`: a tiny training run of both stages and a bench report land in a local MLflow
store (params, per-step metrics, final metrics, artifacts), read back with MLflow's client; a
missing extra or an unknown tracker is one line before any work."""

import importlib.util
import json
import shutil
import sys
from types import SimpleNamespace

import pytest
from helpers import assert_one_line_error

from artgen.app.cli import log_bench_report, main
from artgen.tracking import NO_TRACKER, start_tracking
from artgen.workspace import Workspace

needs_mlflow = pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                  reason="the track extra (pip install 'artgen[track]', in the test extra) is not installed")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(autouse=True)
def local_store_only(monkeypatch):
    """Every test tracks into its own workspace (or the store it names), never a user's server."""
    for var in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_ALLOW_FILE_STORE", "RANK"):
        monkeypatch.delenv(var, raising=False)


def runs_in(store, experiment="artgen"):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.as_uri())
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment!r} in {store}"
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    return client, {r.info.run_name: r for r in runs}


def run_main(capsys, *args):
    rc = main(list(args))
    return SimpleNamespace(returncode=rc, stderr=capsys.readouterr().err)


@needs_mlflow
def test_training_both_stages_logs_params_steps_final_metrics_and_artifacts(small_corpus, tmp_path, capsys):
    ws = tmp_path / "ws"
    shutil.copytree(small_corpus / "data", ws / "data")
    common = ["--steps", "12", "--device", "cpu", "--track", "mlflow"]  # a logged row at steps 10 and 12
    assert main(["--workdir", str(ws), "train", "vqvae", "--batch-size", "4", "--threads", "1", *common]) == 0
    assert main(["--workdir", str(ws), "train", "--encoder", "tiny", "--annotations", "gt", *common]) == 0

    client, runs = runs_in(ws / "mlruns")
    assert set(runs) == {"train vqvae (quick)", "train tiny (quick)"}
    for run_name, ckpt, param, final in (("train vqvae (quick)", "vqvae", ("train.lr", "0.002"), "recon_mse"),
                                         ("train tiny (quick)", "tiny", ("predictor.width", "128"), "token_accuracy")):
        run = runs[run_name]
        assert run.info.status == "FINISHED"
        assert run.data.params[param[0]] == param[1] and run.data.params["train.steps"] == "12"
        loss = client.get_metric_history(run.info.run_id, "loss")
        log = [json.loads(line) for line in (ws / "checkpoints" / ckpt / "train_log.jsonl").read_text().splitlines()]
        assert [(m.step, m.value) for m in loss] == [(row["step"], pytest.approx(row["loss"])) for row in log]
        assert [m.step for m in loss] == [10, 12]
        metrics = json.loads((ws / "checkpoints" / ckpt / "metrics.json").read_text())
        assert run.data.metrics[final] == pytest.approx(metrics[final])
        assert [m.step for m in client.get_metric_history(run.info.run_id, final)] == [12]  # logged once, not twice
        assert run.data.metrics["steps"] == 12
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")}
        assert {"checkpoint/config.json", "checkpoint/metrics.json", "checkpoint/train_log.jsonl"} <= artifacts
        assert not any(a.endswith(".safetensors") for a in artifacts)
        copy = client.download_artifacts(run.info.run_id, "checkpoint/metrics.json", str(tmp_path / run_name))
        assert json.loads(open(copy).read()) == metrics
    vq = {a.path for a in client.list_artifacts(runs["train vqvae (quick)"].info.run_id, "checkpoint")}
    assert {"checkpoint/reconstructions.png", "checkpoint/code_histogram.png"} <= vq
    assert client.get_metric_history(runs["train tiny (quick)"].info.run_id, "ce")[-1].step == 12  # the evaluation row


@pytest.mark.parametrize("args", [
    ["train", "vqvae", "--track", "mlflow"],
    ["train", "--track", "mlflow", "vqvae"],
    ["train", "--encoder", "tiny", "--track", "mlflow"],
    ["bench", "--quick", "--track", "mlflow"],
])
def test_a_missing_extra_is_one_line_before_any_work(tmp_path, monkeypatch, capsys, args):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # `import mlflow` now fails as it does without the extra
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    result = run_main(capsys, "--workdir", str(tmp_path / "ws"), *args)  # no corpus: any work would fail otherwise
    assert_one_line_error(result, "--track mlflow", "pip install 'artgen[track]'")
    assert not (tmp_path / "ws").exists()


def test_an_unknown_tracker_is_one_line(tmp_path, capsys):
    for args in (["train", "vqvae"], ["bench"]):
        assert_one_line_error(run_main(capsys, "--workdir", str(tmp_path), *args, "--track", "wandb"),
                              "unknown tracker 'wandb'", "--track mlflow")


def fake_report(folder):
    folder.mkdir(parents=True)
    report = {
        "meta": {"config": {"quick": True, "captions": 16, "encoders": ["tiny"], "style": {"epochs": 5}},
                 "label_source": "gt", "versions": {"torch": "2.13.0"}, "seconds": 42.5},
        "rows": [{"name": "tiny", "fid": 161.75, "latency_ms_p50": 58.1, "styles_covered": 14, "weights": "trained from scratch"}],
        "references": [{"name": "VQ-VAE reconstructions (ceiling)", "fid": 114.7}],
        "criteria": [{"target": "inference < 100 ms", "pass": True}, {"target": "style", "pass": False},
                     {"target": "unseen", "pass": None}],
    }
    (folder / "report.json").write_text(json.dumps(report))
    for name, text in (("report.md", "# bench"), ("report.html", "<html></html>"), ("samples_tiny.png", "png")):
        (folder / name).write_text(text)
    return folder


@needs_mlflow
def test_the_bench_hook_logs_the_report_numbers_and_files(tmp_path):
    ws = Workspace(tmp_path / "ws")
    folder = fake_report(tmp_path / "report")
    with start_tracking("mlflow", ws, run_name="bench") as tracker:
        log_bench_report(tracker, folder)

    client, runs = runs_in(ws.root / "mlruns")
    run = runs["bench"]
    assert run.info.status == "FINISHED"
    assert run.data.params["config.quick"] == "True" and run.data.params["config.style.epochs"] == "5"
    assert run.data.params["label_source"] == "gt"
    assert run.data.metrics["tiny/fid"] == 161.75 and run.data.metrics["tiny/latency_ms_p50"] == 58.1
    assert "tiny/weights" not in run.data.metrics  # words are not metrics
    assert run.data.metrics["reference/VQ-VAE reconstructions _ceiling_/fid"] == 114.7
    assert (run.data.metrics["criteria_passed"], run.data.metrics["criteria_failed"]) == (1, 1)
    assert run.data.metrics["bench_seconds"] == 42.5
    assert {a.path for a in client.list_artifacts(run.info.run_id, "report")} == {
        "report/report.json", "report/report.md", "report/report.html", "report/samples_tiny.png"}


@needs_mlflow
def test_the_tracking_uri_is_respected_and_a_failure_marks_the_run(tmp_path, monkeypatch):
    ws = Workspace(tmp_path / "ws")
    with start_tracking(None, ws, run_name="untracked") as tracker:
        assert tracker is NO_TRACKER
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", elsewhere.as_uri())
    with pytest.raises(RuntimeError):
        with start_tracking("mlflow", ws, run_name="broken") as tracker:
            tracker.log_metrics({"loss": 1.0, "note": "words"}, step=1)
            raise RuntimeError("the stage failed")
    _, runs = runs_in(elsewhere)
    assert runs["broken"].info.status == "FAILED" and runs["broken"].data.metrics == {"loss": 1.0}
    assert not (ws.root / "mlruns").exists()


@needs_mlflow
def test_a_store_mlflow_cannot_open_is_one_line_before_any_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuchscheme://nowhere")
    result = run_main(capsys, "--workdir", str(tmp_path / "ws"), "train", "vqvae", "--track", "mlflow")  # no corpus either
    assert_one_line_error(result, "cannot use the MLflow store nosuchscheme://nowhere", "MLFLOW_TRACKING_URI")
