"""A stage reads only its own sections of params.yaml, once, with errors that name them."""

import pytest

from social_reward.config.model import ModelConfig
from social_reward.config.pairs import PairsConfig
from social_reward.config.params import load_params
from social_reward.config.pretrain import PretrainConfig
from social_reward.config.section import ParamsError, load_section, load_sections
from tests.conftest import REPO_ROOT


def test_a_section_reads_as_the_whole_file_reads_it():
    params = load_params(REPO_ROOT / "params.yaml")
    assert load_section(REPO_ROOT / "params.yaml", PairsConfig) == params.pairs
    model, pretrain = load_sections(REPO_ROOT / "params.yaml", ModelConfig, PretrainConfig)
    assert (model, pretrain) == (params.model, params.pretrain)


def test_other_sections_are_not_looked_at(tmp_path):
    """A stage is not stopped by a broken section it does not use (its own stage is)."""
    path = tmp_path / "params.yaml"
    path.write_text("pairs:\n  seed: 3\nprofile:\n  plot_sample: none\n")
    assert load_section(path, PairsConfig).seed == 3
    with pytest.raises(ParamsError, match=r"profile\.plot_sample: .*\(got 'none'\)"):
        load_params(path)


def test_a_missing_section_takes_its_defaults(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("pairs:\n  seed: 3\n")
    assert load_section(path, ModelConfig) == ModelConfig()


def test_a_bad_value_names_the_file_the_section_key_and_the_rule(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("pairs:\n  splits:\n    train: 0.9\n    val: 0.2\n")
    with pytest.raises(ParamsError, match=rf"{path}: pairs\.splits: .*must leave a test split"):
        load_section(path, PairsConfig)
    path.write_text("pretrain:\n  epochs: 0\n")
    with pytest.raises(ParamsError, match=r"pretrain\.epochs: .*greater than 0 \(got 0\)"):
        load_sections(path, ModelConfig, PretrainConfig)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("", None),
        ("[1, 2]\n", "must be a mapping of sections, got list"),
        ("a: [\n", "not valid YAML"),
    ],
)
def test_the_file_itself(tmp_path, text, rule):
    path = tmp_path / "params.yaml"
    path.write_text(text)
    if rule is None:
        assert load_section(path, PairsConfig) == PairsConfig()
    else:
        with pytest.raises(ParamsError, match=rule):
            load_section(path, PairsConfig)
    with pytest.raises(ParamsError, match=f"{tmp_path / 'absent.yaml'}: file missing"):
        load_section(tmp_path / "absent.yaml", PairsConfig)
