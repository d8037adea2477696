from pathlib import Path

import pytest
import yaml

from social_reward.config.params import load_params
from social_reward.config.run_config import load_run_config
from social_reward.config.section import ParamsError
from tests.conftest import CI_CONFIG, REPO_ROOT


def test_the_repository_params_load_into_typed_sections():
    params = load_params(REPO_ROOT / "params.yaml")
    assert params.profile.validated_dir == Path("artifacts/validated")
    assert params.profile.plot_sample > 0


def test_unknown_key_is_named_with_the_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("profile:\n  plot_sampel: 10\n")
    with pytest.raises(ParamsError, match=r"params.yaml: profile.plot_sampel: Extra inputs"):
        load_params(path)


def test_wrong_value_names_key_rule_and_value(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("profile:\n  plot_sample: -3\n")
    with pytest.raises(ParamsError, match=r"profile.plot_sample: .*greater than 0 \(got -3\)"):
        load_params(path)


def test_missing_and_broken_params_files(tmp_path):
    with pytest.raises(ParamsError, match="file missing"):
        load_params(tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("profile: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- profile\n")
    with pytest.raises(ParamsError, match="must be a mapping"):
        load_params(listed)


def test_ci_config_overrides_apply_like_dvc_set_params():
    config = load_run_config(CI_CONFIG)
    params = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
    shrunk = config.apply_to(params)
    for key, value in config.params.items():
        *sections, leaf = key.split(".")
        node = shrunk
        for section in sections:
            node = node[section]
        assert node[leaf] == value
        assert f"{key}={value}" in config.dvc_set_params()
    assert params != shrunk, "apply_to must not change its input"
    assert config.simulate.images < 6000


def test_run_config_errors_name_the_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("simulate:\n  imgs: 3\n")
    with pytest.raises(ParamsError, match=r"run\.yaml"):
        load_run_config(path)


def test_the_ablation_trains_without_the_neutrality_term_and_the_reward_with_it():
    train = load_params(REPO_ROOT / "params.yaml").train
    assert train.neutrality_weight > 0
    assert train.trainer_config("reward").neutrality_weight == train.neutrality_weight
    assert train.trainer_config("ablation").neutrality_weight == 0.0
    # Everything else is the same training.
    reward, ablation = (train.trainer_config(v).model_dump() for v in ("reward", "ablation"))
    assert {k for k in reward if reward[k] != ablation[k]} == {"neutrality_weight"}
