"""Running DVC from Python: the stage order the pipeline flow follows."""

import shutil

import yaml

from social_reward.ops.dvc_command import pipeline_stages
from tests.conftest import REPO_ROOT, run


def test_the_stage_order_is_dvcs_graph_of_dvc_yaml(tmp_path):
    """The pipeline flow's order comes from DVC itself: a stage declared before what it
    depends on still comes after it; independent stages keep dvc.yaml's order."""
    assert pipeline_stages(REPO_ROOT) == [
        "validate",
        "drift",  # a gate: every stage that reads the export requires its verdict
        "profile",
        "pairs",
        "pretrain",
        "train",  # both variants of the foreach stage
        "evaluate",
        "generator_pretrain",
        "finetune",
        "evaluate_generator",
        "report",
    ]
    shuffled = tmp_path / "project"
    shuffled.mkdir()
    run(["git", "init", "-q"], cwd=shuffled)
    run(["dvc", "init", "-q"], cwd=shuffled)
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    reordered = {name: stages[name] for name in reversed(list(stages))}
    (shuffled / "dvc.yaml").write_text(yaml.safe_dump({"stages": reordered}, sort_keys=False))
    shutil.copy(REPO_ROOT / "params.yaml", shuffled / "params.yaml")
    order = pipeline_stages(shuffled)
    assert order.index("validate") < order.index("pairs") < order.index("train")
    assert order.index("train") < order.index("evaluate") < order.index("report")
    assert order.index("drift") < order.index("profile")  # independent: dvc.yaml's order
