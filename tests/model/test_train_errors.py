"""`train` refuses bad input before training, naming what is wrong."""

from __future__ import annotations

import pandas as pd
import pytest

from social_reward.config.train import TrainVariant
from social_reward.reward.data import PairDataError
from social_reward.stages.train import run as run_train
from tests.model.conftest import VARIANT, train_config


def test_unknown_variant_names_it_and_the_choices(training_inputs, tmp_path):
    config = train_config(training_inputs, tmp_path)
    with pytest.raises(PairDataError, match="'ablated'") as error:
        run_train(config, "ablated", progress=False)
    assert all(choice in str(error.value) for choice in ("debiased", "naive"))


def test_pairs_file_without_a_column_names_file_and_column(training_inputs, tmp_path):
    pairs_dir = tmp_path / "pairs"
    pairs_dir.mkdir()
    for name in ("train.parquet", "val.parquet"):
        table = pd.read_parquet(training_inputs.pairs_dir / name)
        if name == "train.parquet":
            table = table.drop(columns="neg_path")
        table.to_parquet(pairs_dir / name, index=False)
    config = train_config(training_inputs, tmp_path)
    variants = {VARIANT: TrainVariant(pairs_dir=pairs_dir, out_dir=tmp_path / "reward")}
    with pytest.raises(PairDataError, match="neg_path") as error:
        run_train(config.model_copy(update={"variants": variants}), VARIANT, progress=False)
    assert str(pairs_dir / "train.parquet") in str(error.value)


def test_batch_size_must_split_over_the_processes(training_inputs, tmp_path):
    config = train_config(training_inputs, tmp_path, batch_size=15, devices=2, strategy="ddp")
    with pytest.raises(ValueError, match=r"batch_size 15 must divide .* processes 2"):
        run_train(config, VARIANT, progress=False)
    assert not tmp_path.joinpath("checkpoints").exists()


def test_a_confounder_side_outside_minus_one_to_one_names_file_column_and_row(
    training_inputs, tmp_path
):
    pairs_dir = tmp_path / "pairs"
    pairs_dir.mkdir()
    for name in ("train.parquet", "val.parquet"):
        table = pd.read_parquet(training_inputs.pairs_dir / name)
        if name == "train.parquet":
            table["generator_side"] = table["generator_side"].astype("int64")
            table.loc[3, "generator_side"] = 2
        table.to_parquet(pairs_dir / name, index=False)
    config = train_config(training_inputs, tmp_path)
    variants = {VARIANT: TrainVariant(pairs_dir=pairs_dir, out_dir=tmp_path / "reward")}
    with pytest.raises(PairDataError, match=r"'generator_side' holds 2 in row 3") as error:
        run_train(config.model_copy(update={"variants": variants}), VARIANT, progress=False)
    assert str(pairs_dir / "train.parquet") in str(error.value)
    assert "one of [-1, 0, 1]" in str(error.value)
