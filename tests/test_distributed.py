"""Training on several processes launched by torchrun, on the CPU with the
gloo backend: the same weights as one process, a killed process brought back
by torchrun, checkpoints that resume on any number of processes, and two
"machines" (two launchers on 127.0.0.1)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fake_plugins import GOOD_PLUGIN, make_distribution
from tiny_recipes import TOY_RECIPE

from gankit import checkpoint as ckpt

# the tiny linear networks (no batch statistics), the non-saturating loss and
# WGAN-GP's gradient penalty, whose double backward the gradients must survive
RECIPE = TOY_RECIPE.replace("[train]", "[train]\ndeterministic = true\ncheckpoint_ticks = 2").replace(
    "[data]", '[regularizers.gradient_penalty]\ntype = "gradient_penalty"\n\n[data]'
)

# a logger that kills its own process (rank 0: only it logs) at tick 3, once
KILLER_PLUGIN = """
import os, signal
from pathlib import Path
import attrs
import gankit
from gankit import Logger

@attrs.define
class KillerOptions:
    \"\"\"Where the marker goes.\"\"\"
    marker: str = ""

class Killer(Logger):
    \"\"\"Dies by SIGKILL at tick 3 unless its marker exists.\"\"\"
    def __init__(self, options):
        self.marker = Path(options.marker)
    def log(self, record):
        if record["tick"] == 3 and not self.marker.exists():
            self.marker.write_text("killed")
            os.kill(os.getpid(), signal.SIGKILL)

@gankit.hookimpl
def register_components(registry):
    registry.add("logger", "killer", Killer, KillerOptions)
"""


@pytest.fixture
def site(tmp_path: Path) -> Path:
    pytest.importorskip("gankit_wgan")  # the gradient penalty
    site = tmp_path / "site"
    make_distribution(site, "gankit-toyplugin", "toyplugin", GOOD_PLUGIN)
    make_distribution(site, "gankit-killer", "killerplugin", KILLER_PLUGIN)
    return site


def _env(site: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]), "OMP_NUM_THREADS": "1"}


def _gankit(site: Path, *args: str, launcher: list[str] | None = None) -> subprocess.CompletedProcess:
    command = [*(launcher or [sys.executable]), "-m", "gankit", *args, "--progress", "lines"]
    done = subprocess.run(command, env=_env(site), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *args]


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = ckpt.load(ckpt.find(run_dir))
    return {f"{role}.{name}": value for role in ("generator", "discriminator", "generator_ema") for name, value in state[role].items()}


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    # one process averages the batch's 8 losses, two average two means of 4: only
    # the order of float32 additions differs, ~1e-7 relative per step over 8 steps
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-5, atol=1e-6, msg=name)


def test_two_processes_train_the_weights_of_one_and_resume_on_one(tmp_path, site):
    (tmp_path / "recipe.toml").write_text(RECIPE)
    _gankit(site, "run", str(tmp_path / "recipe.toml"), "--run-dir", str(tmp_path / "one"))
    two = _gankit(
        site,
        "run",
        str(tmp_path / "recipe.toml"),
        "--run-dir",
        str(tmp_path / "two"),
        launcher=_torchrun("--standalone", "--nproc-per-node", "2"),
    )
    assert "x 2 processes" in two.stderr
    _close(_weights(tmp_path / "one"), _weights(tmp_path / "two"))
    log = [json.loads(line) for line in (tmp_path / "two" / "log.jsonl").read_text().splitlines()]
    assert [entry["tick"] for entry in log] == [1, 2, 3, 4]
    assert json.loads((tmp_path / "two" / "env.json").read_text())["processes"] == 2

    # the two processes' checkpoint goes on in one process, as the one-process run does
    for run in ("one", "two"):
        _gankit(site, "run", "--resume", str(tmp_path / run), "--set", "train.kimg=0.096")
    _close(_weights(tmp_path / "one"), _weights(tmp_path / "two"))


def test_a_killed_process_is_brought_back_by_torchrun_and_resumes(tmp_path, site):
    recipe = RECIPE.replace("[loggers.jsonl]", f'[loggers.jsonl]\n\n[loggers.killer]\ntype = "killer"\nmarker = "{tmp_path / "killed"}"')
    (tmp_path / "recipe.toml").write_text(recipe)
    run_dir = tmp_path / "run"
    launcher = _torchrun("--standalone", "--nproc-per-node", "2", "--max-restarts", "1")
    done = _gankit(site, "run", str(tmp_path / "recipe.toml"), "--run-dir", str(run_dir), "--auto-resume", launcher=launcher)
    assert (tmp_path / "killed").exists()  # it did die at tick 3
    assert "resuming" in done.stderr and "at 0.032 kimg" in done.stderr
    log = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [entry["tick"] for entry in log] == [1, 2, 3, 4]  # tick 3 logged again after the restart, once
    assert ckpt.find(run_dir).name == "checkpoint-000000000064.pt"


def test_a_batch_that_does_not_split_is_refused(tmp_path, site):
    (tmp_path / "recipe.toml").write_text(RECIPE)
    command = [*_torchrun("--standalone", "--nproc-per-node", "3"), "-m", "gankit", "run", str(tmp_path / "recipe.toml")]
    done = subprocess.run([*command, "--run-dir", str(tmp_path / "run")], env=_env(site), capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "train.batch_size: a batch of 8 does not split evenly among 3 processes" in done.stderr


@pytest.mark.slow
def test_two_machines_of_one_process_each_train_the_weights_of_one(tmp_path, site):
    (tmp_path / "recipe.toml").write_text(RECIPE)
    _gankit(site, "run", str(tmp_path / "recipe.toml"), "--run-dir", str(tmp_path / "one"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rendezvous = ["--nnodes", "2", "--nproc-per-node", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}"]
    command = ["-m", "gankit", "run", str(tmp_path / "recipe.toml"), "--run-dir", str(tmp_path / "two"), "--progress", "lines"]
    machines = [
        subprocess.Popen(
            [*_torchrun(*rendezvous, "--node-rank", str(node)), *command], env=_env(site), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for node in (0, 1)
    ]
    for machine in machines:
        _, err = machine.communicate(timeout=300)
        assert machine.returncode == 0, err.decode()[-3000:]
    _close(_weights(tmp_path / "one"), _weights(tmp_path / "two"))


# every metric of the core (and SWD, when the progan plugin is installed) on a
# fixed generator; process 0 writes the scores
METRICS_SCRIPT = """
import json, sys
from pathlib import Path
import torch
from gankit import MetricContext, default_registry, distributed
from gankit.metrics import FIDOptions, FrechetInceptionDistance, KernelInceptionDistance, KIDOptions
from gankit.metrics import PrecisionRecall, PrecisionRecallOptions
from gankit.metrics.recognizability import Recognizability, RecognizabilityOptions
from gankit.testing import TinyGenerator, TinyOptions

distributed.setup(torch.device("cpu"))
shapes = default_registry().get("dataset", "shapes")
dataset = shapes.factory(shapes.options(resolution=16, size=400))
torch.manual_seed(0)
generator = TinyGenerator(TinyOptions(), dataset.context).eval()  # conditional: the shapes have 6 classes
context = MetricContext(generator, dataset, torch.device("cpu"), 32, 0)
features = dict(n_fake=101, n_real=77, extractor=sys.argv[1])
metrics = {
    "fid": FrechetInceptionDistance(FIDOptions(**features)),
    "kid": KernelInceptionDistance(KIDOptions(**features, subsets=10, subset_size=50)),
    "precision_recall": PrecisionRecall(PrecisionRecallOptions(**features)),
    "recognizability": Recognizability(RecognizabilityOptions(images=101, epochs=2, width=8, threshold=0.01)),
}
try:
    from gankit_progan import SlicedWasserstein, SlicedWassersteinOptions
    metrics["swd"] = SlicedWasserstein(SlicedWassersteinOptions(images=300))  # two chunks of images, four repeats of directions
except ImportError:
    pass
scores = {name: metric.evaluate(context) for name, metric in metrics.items()}
again = MetricContext(generator, dataset, torch.device("cpu"), 32, 0)
scores["fid_again"] = FrechetInceptionDistance(FIDOptions(**features)).evaluate(again)
if distributed.rank() == 0:
    Path(sys.argv[2]).write_text(json.dumps(scores))
distributed.shutdown()
"""


def test_two_processes_share_the_work_of_every_metric_and_score_what_one_does(tmp_path):
    from gankit.metrics import save_stand_in_extractor

    script, extractor = tmp_path / "score.py", save_stand_in_extractor(tmp_path / "stand_in.pt")
    script.write_text(METRICS_SCRIPT)
    scores = {}
    for processes, launcher in ((1, [sys.executable]), (2, _torchrun("--standalone", "--nproc-per-node", "2"))):
        # each its own cache: the two processes make the real features and the classifier themselves
        env = {**os.environ, "OMP_NUM_THREADS": "1", "GANKIT_CACHE_DIR": str(tmp_path / f"cache{processes}")}
        out = tmp_path / f"scores{processes}.json"
        done = subprocess.run([*launcher, str(script), str(extractor), str(out)], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        scores[processes] = json.loads(out.read_text())
    assert scores[1].keys() == scores[2].keys()
    assert scores[1]["fid_again"] == scores[1]["fid"]  # read back from the cache the first evaluation wrote
    for name, one in scores[1].items():
        two = scores[2][name]
        assert one.keys() == two.keys(), name
        for key, value in one.items():
            # the same images in other batches: convolutions may round differently in the last bit
            assert two[key] == (pytest.approx(value, rel=1e-4, abs=1e-6) if isinstance(value, float) else value), (name, key)
    # counts summed over the processes: some images named, and the generator is conditional, so labels were split too
    assert scores[1]["recognizability"]["recognizable"] > 0 and "class_accuracy" in scores[1]["recognizability"]


SHUTDOWN_SCRIPT = """
import os, sys
from pathlib import Path
import torch
from gankit import distributed

distributed.setup(torch.device("cpu"))
torch.optim.Adam(torch.nn.Linear(2, 1).parameters())  # as every training does after joining
total = distributed.total(torch.ones(1))
distributed.shutdown()
threads = sorted(open(f"/proc/self/task/{task}/comm").read().strip() for task in os.listdir("/proc/self/task"))
Path(sys.argv[1], f"rank{distributed.rank()}.txt").write_text(f"rank {distributed.rank()}: total {total.item():g}, threads {threads}")
"""


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads the threads of a process from /proc")
def test_shutdown_ends_gloos_threads_after_an_optimizer_was_made(tmp_path):
    # gloo's worker threads left running into the interpreter's exit abort a
    # process now and then (distributed.setup says why): none may outlive shutdown
    script = tmp_path / "shutdown.py"
    script.write_text(SHUTDOWN_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    launcher = _torchrun("--standalone", "--nproc-per-node", "2")
    # each process writes its own file: the two share one stdout, where their lines can run together
    done = subprocess.run([*launcher, str(script), str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [path.read_text() for path in sorted(tmp_path.glob("rank*.txt"))]
    assert len(lines) == 2 and all("total 2," in line for line in lines), lines
    assert not any("gloo" in line for line in lines), lines
