"""bench/gpu_suite.py --smoke: the GPU benchmark's every path, at toy sizes on
the CPU, so that the script is ready when a GPU is."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

from PIL import Image
from tiny_recipes import REPO


def test_the_gpu_suite_runs_every_measurement_at_toy_sizes(tmp_path):
    data = tmp_path / "images.zip"
    with zipfile.ZipFile(data, "w") as archive:
        for index in range(64):
            path = tmp_path / f"{index}.png"
            Image.new("RGB", (32, 32), (index * 4, 0, 255 - index * 4)).save(path)
            archive.write(path, f"train/{index}.png")
    out = tmp_path / "gpu.json"
    done = subprocess.run(
        [sys.executable, "bench/gpu_suite.py", "--smoke", "--data", str(data), "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {(row["case"], row.get("variant")): row for row in json.loads(out.read_text())["rows"]}
    for variant in ("fp32", "bf16"):
        row = rows["dcgan_shapes 32²", variant]
        assert row["img_per_s"] > 0 and row["gflop_per_iteration"] > 0 and row["peak_memory_mb"] > 0, row
    assert rows["data loader, images.zip", None]["img_per_s"] > 0
    assert any(case.startswith("FID") for case, _ in rows)  # measured, or saying why not
    assert "| dcgan_shapes 32² | fp32 |" in done.stdout and "python bench/gpu_suite.py --smoke" in done.stdout
