"""`social-reward score`: a table in, the same rows with a score out, bad images reported."""

import os

import pandas as pd
import pytest
import torch
from PIL import Image

from social_reward.reward.backbone import DEFAULT_BACKBONE, build_backbone
from social_reward.reward.model import SocialReward
from social_reward.reward.scoring import ROWS_PER_BATCH, ScoringInputError, score_table
from tests.conftest import run


def score_command(model, input_path, output_path, *options: str, **run_options):
    """`social-reward score` run as a user runs it; its result whatever the exit status."""
    command = ["social-reward", "score", "--model", str(model), "--input", str(input_path)]
    return run([*command, "--output", str(output_path), *options], check=False, **run_options)


@pytest.fixture(scope="module")
def saved_reward(tmp_path_factory):
    torch.manual_seed(0)
    reward = SocialReward(build_backbone(DEFAULT_BACKBONE), DEFAULT_BACKBONE, batch_size=3)
    return reward, reward.save_pretrained(tmp_path_factory.mktemp("reward") / "reward")


@pytest.fixture
def table(tmp_path) -> pd.DataFrame:
    (tmp_path / "images").mkdir()
    rows = []
    for n, colour in enumerate(["red", "navy", "yellow", "green", "white", "black", "pink"]):
        Image.new("RGB", (40, 40), colour).save(tmp_path / "images" / f"{n}.png")
        rows.append(
            {"prompt": f"a {colour} square" if n % 2 else "a star", "file": f"images/{n}.png"}
        )
    (tmp_path / "images" / "broken.png").write_bytes(b"not an image")
    rows.insert(3, {"prompt": "a star", "file": "images/broken.png"})
    rows.append({"prompt": "a ring", "file": str(tmp_path / "images" / "missing.png")})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_rows_keep_their_order_and_bad_images_get_no_score(saved_reward, table, tmp_path, suffix):
    reward, _ = saved_reward
    source = tmp_path / f"input{suffix}"
    table.to_parquet(source) if suffix == ".parquet" else table.to_csv(source, index=False)
    report = score_table(reward, source, tmp_path / f"out{suffix}", progress=False)
    out = (pd.read_parquet if suffix == ".parquet" else pd.read_csv)(tmp_path / f"out{suffix}")
    assert list(out["file"]) == list(table["file"]) and list(out["prompt"]) == list(table["prompt"])
    assert report.rows == 9 and report.scored == 7 and len(report.errors) == 2
    assert out["score"].isna().tolist() == [False] * 3 + [True] + [False] * 4 + [True]
    assert any("broken.png" in error for error in report.errors)
    assert any("missing.png" in error for error in report.errors)
    expected = reward.score("a star", [tmp_path / "images" / "0.png"])[0]
    assert out["score"][0] == pytest.approx(expected, abs=1e-6)


def test_a_table_without_the_columns_is_refused_naming_them(saved_reward, tmp_path):
    reward, _ = saved_reward
    pd.DataFrame({"caption": ["x"], "file": ["a.png"]}).to_parquet(tmp_path / "in.parquet")
    with pytest.raises(ScoringInputError, match=r"column\(s\) \['prompt'\] missing"):
        score_table(reward, tmp_path / "in.parquet", tmp_path / "out.parquet", progress=False)
    with pytest.raises(ScoringInputError, match=r"must be a \.parquet or \.csv file"):
        score_table(reward, tmp_path / "in.parquet", tmp_path / "out.json", progress=False)


def test_the_command_scores_and_reports_unreadable_images(saved_reward, table, tmp_path):
    _, folder = saved_reward
    table.to_parquet(tmp_path / "input.parquet")
    result = score_command(folder, tmp_path / "input.parquet", tmp_path / "scored.parquet")
    assert result.returncode == 2
    assert "scored 7 of 9 rows" in result.stdout
    assert "error: unreadable image" in result.stderr and "broken.png" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(pd.read_parquet(tmp_path / "scored.parquet")) == 9


def test_the_output_never_overwrites_the_input(saved_reward, table, tmp_path):
    reward, _ = saved_reward
    source = tmp_path / "input.parquet"
    table.to_parquet(source)
    before = source.read_bytes()
    (tmp_path / "same").symlink_to(tmp_path)
    for output in (
        source,
        tmp_path / "same" / "input.parquet",
        tmp_path / "x" / ".." / source.name,
    ):
        with pytest.raises(ScoringInputError) as error:
            score_table(reward, source, output, progress=False)
        assert str(error.value) == (
            f"{output}: the output is the input (rule: scoring never overwrites its input); "
            f"choose another file, e.g. {tmp_path / 'input-scored.parquet'}"
        )
    assert source.read_bytes() == before


class FailsOnSecondBatch:
    """The saved reward, failing as a crash would once the first batch is written."""

    def __init__(self, reward: SocialReward) -> None:
        self.reward, self.calls = reward, 0

    def image_tensor(self, image):
        return self.reward.image_tensor(image)

    def score_pairs(self, prompts, images):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("the machine died")
        return self.reward.score_pairs(prompts, images)


def test_a_failure_midway_leaves_the_old_output_and_no_temporary_file(
    saved_reward, table, tmp_path
):
    """A crash mid-way never leaves a truncated table that looks complete."""
    reward, _ = saved_reward
    rows = pd.concat([table] * (ROWS_PER_BATCH // len(table) + 1), ignore_index=True)
    rows.to_parquet(tmp_path / "input.parquet")
    output = tmp_path / "out.parquet"
    output.write_bytes(b"the previous output")
    with pytest.raises(RuntimeError, match="the machine died"):
        score_table(FailsOnSecondBatch(reward), tmp_path / "input.parquet", output, progress=False)
    assert output.read_bytes() == b"the previous output"
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


def readable_rows(table: pd.DataFrame) -> pd.DataFrame:
    return table[~table["file"].str.contains("broken|missing")]


def test_the_scores_are_those_of_score_pairs_on_the_same_rows(saved_reward, table, tmp_path):
    """One scoring path: the batch's readable rows go through `score_pairs` as they are."""
    reward, _ = saved_reward
    table.to_parquet(tmp_path / "input.parquet")
    score_table(reward, tmp_path / "input.parquet", tmp_path / "out.parquet", progress=False)
    out = pd.read_parquet(tmp_path / "out.parquet").dropna(subset=["score"])
    rows = readable_rows(table)
    expected = reward.score_pairs(list(rows["prompt"]), [tmp_path / f for f in rows["file"]])
    assert list(out["score"]) == expected


@pytest.mark.parametrize("decode_workers", [0, 2])
def test_order_and_errors_are_kept_across_batches_and_decoding_workers(
    saved_reward, table, tmp_path, decode_workers
):
    """Two-row batches, decoded by workers that take every other one, merge in input order."""
    reward, _ = saved_reward
    table.to_parquet(tmp_path / "input.parquet")
    whole = tmp_path / "whole.parquet"
    score_table(reward, tmp_path / "input.parquet", whole, progress=False)
    report = score_table(
        reward,
        tmp_path / "input.parquet",
        tmp_path / "batched.parquet",
        progress=False,
        decode_workers=decode_workers,
        rows_per_batch=2,
    )
    batched = pd.read_parquet(tmp_path / "batched.parquet")
    pd.testing.assert_frame_equal(batched, pd.read_parquet(whole), check_exact=False, atol=1e-6)
    assert (report.rows, report.scored, report.main_process) == (9, 7, True)
    assert [error.split(":")[0] for error in report.errors] == [
        str(tmp_path / "images" / "broken.png"),
        str(tmp_path / "images" / "missing.png"),
    ]
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


def test_a_table_without_rows_is_refused(saved_reward, tmp_path):
    reward, _ = saved_reward
    pd.DataFrame({"prompt": [], "file": []}).to_parquet(tmp_path / "in.parquet")
    (tmp_path / "in.csv").write_text("prompt,file\n")
    for source in (tmp_path / "in.parquet", tmp_path / "in.csv"):
        with pytest.raises(ScoringInputError, match="no rows to score"):
            score_table(reward, source, tmp_path / "out.parquet", progress=False)
    assert not (tmp_path / "out.parquet").exists()


def test_lightning_options_lightning_refuses_are_named_with_an_example(
    saved_reward, table, tmp_path
):
    from social_reward.training.lightning_options import LightningOptions

    reward, _ = saved_reward
    table.to_parquet(tmp_path / "in.parquet")
    with pytest.raises(ScoringInputError, match=r"'accelerator': 'tpu-9'.* refused: .*e\.g\. "):
        score_table(
            reward,
            tmp_path / "in.parquet",
            tmp_path / "out.parquet",
            progress=False,
            options=LightningOptions(accelerator="tpu-9"),
        )
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.slow
def test_two_process_ddp_writes_the_table_one_process_writes(saved_reward, table, tmp_path):
    """`--devices 2 --strategy ddp` on the CPU (gloo): each process scores every other
    two-row batch; rank 0 merges them and reports the errors of both."""
    reward, folder = saved_reward
    table.to_parquet(tmp_path / "input.parquet")
    score_table(
        reward,
        tmp_path / "input.parquet",
        tmp_path / "one.parquet",
        progress=False,
        rows_per_batch=2,
    )
    result = score_command(
        folder,
        tmp_path / "input.parquet",
        tmp_path / "two.parquet",
        *("--accelerator", "cpu", "--devices", "2", "--strategy", "ddp", "--rows-per-batch", "2"),
        cwd=tmp_path,
        env=os.environ | {"OMP_NUM_THREADS": "1"},  # one thread per process
    )
    assert "distributed_backend=gloo" in result.stderr, result.stderr
    assert "Starting with 2 processes" in result.stderr
    assert result.returncode == 2, result.stderr
    assert result.stdout.count("scored 7 of 9 rows") == 1  # rank 0 reports for both
    # broken.png is in batch 1 (rank 1's), missing.png in batch 4 (rank 0's).
    assert "broken.png" in result.stderr and "missing.png" in result.stderr
    two, one = pd.read_parquet(tmp_path / "two.parquet"), pd.read_parquet(tmp_path / "one.parquet")
    pd.testing.assert_frame_equal(two, one, check_exact=False, atol=1e-6)
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []
