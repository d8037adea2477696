"""The house plan, checked: stages over libraries, and dvc.yaml's code deps true to the code.

`tests/code_graph.py` computes what each stage's module imports and reads; these tests hold
dvc.yaml, the CLI and the package layout to it. When one fails it says what to change.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
import yaml

from tests.code_graph import (
    CONFIG_PACKAGE,
    PACKAGE,
    REPO_ROOT,
    STAGES_PACKAGE,
    code_files,
    facts,
    import_closure,
    modules,
    resources,
    resources_read,
    sections_read,
    stage_modules,
)

DVC_YAML = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())
STAGES: dict[str, dict] = {
    name: stage.get("do", stage) for name, stage in DVC_YAML["stages"].items()
}
SECTIONS = set(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))
CLI = f"{PACKAGE}.cli"
SOURCE = Path("src") / PACKAGE


def declared_code(stage: str) -> set[Path]:
    """The project files a stage's dvc.yaml deps cover (a folder covers all files below)."""
    covered: set[Path] = set()
    for dep in STAGES[stage]["deps"]:
        path = Path(dep)
        if not path.is_relative_to(SOURCE):
            continue
        absolute = REPO_ROOT / path
        assert absolute.exists(), f"dvc.yaml stage {stage}: dep {dep} does not exist"
        if absolute.is_dir():
            covered.update(
                file.relative_to(REPO_ROOT)
                for file in absolute.rglob("*")
                if file.is_file() and "__pycache__" not in file.parts
            )
        else:
            covered.add(path)
    return covered


def test_the_stages_folder_holds_exactly_the_dvc_stages():
    """`ls src/social_reward/stages` is the pipeline: one module per dvc.yaml stage, named
    as the stage, and nothing else (a namespace package: no __init__.py)."""
    listed = sorted(
        path.name
        for path in (REPO_ROOT / SOURCE / "stages").iterdir()
        if path.name != "__pycache__"
    )
    assert listed == sorted(f"{stage}.py" for stage in STAGES)
    assert sorted(stage_modules()) == sorted(STAGES)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_each_stage_runs_its_own_command(stage):
    from typer.main import get_command

    from social_reward.cli import app

    command = stage.replace("_", "-")
    assert STAGES[stage]["cmd"].split()[:2] == ["social-reward", command]
    assert command in get_command(app).commands


def test_cli_stage_commands_only_hand_over_to_the_stage_module():
    """cli.py is not a dep of the stages: for that to be true, a stage command may do
    nothing but call its stage's `main` and show the result."""
    tree = ast.parse(inspect.getsource(__import__(CLI, fromlist=["app"])))
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    for stage in STAGES:
        body = functions[stage].body
        statements = [node for node in body if not isinstance(node, ast.Expr | ast.ImportFrom)]
        assert statements == [], f"cli.{stage}: logic besides the hand-over"
        imports = [node for node in body if isinstance(node, ast.ImportFrom)]
        assert [(node.module, [alias.name for alias in node.names]) for node in imports] == [
            (STAGES_PACKAGE, [stage])
        ]
        call = body[-1].value
        assert ast.unparse(call).startswith("_show(stage.main("), ast.unparse(call)


def test_no_stage_imports_another_stage():
    for stage, module in stage_modules().items():
        others = {name for name in import_closure(module) if name.startswith(STAGES_PACKAGE)}
        assert others <= {module, STAGES_PACKAGE}, f"stage {stage} imports {others - {module}}"


def test_no_library_imports_a_stage():
    stage_names = set(stage_modules().values())
    for module in modules():
        if module in stage_names or module in (CLI, STAGES_PACKAGE):
            continue
        reached = import_closure(module) & stage_names
        assert not reached, f"library {module} imports stage(s) {sorted(reached)}"


def test_src_never_imports_prefect():
    for module in modules():
        tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [alias.name for alias in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(name.split(".")[0] == "prefect" for name in names), module


def paste_list(stage: str) -> str:
    files = sorted(str(path) for path in code_files(stage_modules()[stage]))
    return "\n".join(f"      - {path}" for path in files)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_dvc_yaml_lists_exactly_the_code_each_stage_imports_or_reads(stage):
    """A missing dep leaves `dvc status` clean after a change the stage runs; an extra one
    reruns the stage for a change it never sees."""
    used = code_files(stage_modules()[stage])
    declared = declared_code(stage)
    assert declared == used, (
        f"dvc.yaml stage {stage}: missing {sorted(map(str, used - declared))}, "
        f"not used {sorted(map(str, declared - used))}. Its code deps are:\n{paste_list(stage)}"
    )


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_dvc_yaml_params_are_the_sections_the_stage_reads(stage):
    read = sections_read(stage_modules()[stage])
    params = set(STAGES[stage].get("params", []))
    if "params" in read:  # config/params.py reads every section: the whole file is a dep
        assert "params.yaml" in STAGES[stage]["deps"]
        assert params == {stage}
    else:
        assert params == read & SECTIONS, f"dvc.yaml {stage}: params {sorted(read & SECTIONS)}"


def test_each_section_of_params_yaml_has_its_own_configuration_module():
    from social_reward.config.params import Params
    from social_reward.config.section import Section

    for section in SECTIONS:
        module = __import__(f"{CONFIG_PACKAGE}.{section}", fromlist=["_"])
        classes = [
            value
            for value in vars(module).values()
            if inspect.isclass(value)
            and issubclass(value, Section)
            and value.__module__ == module.__name__
            and value.SECTION
        ]
        assert [cls.SECTION for cls in classes] == [section], module.__name__
        field = "validate_" if section == "validate" else section
        assert Params.model_fields[field].annotation is classes[0]
    assert len(Params.model_fields) == len(SECTIONS)


def test_every_resource_is_read_by_the_code():
    """A resource no literal names is read by a name built at run time, which the deps
    computation cannot see: name it once, in a constant."""
    read = set().union(*(resources_read(module) for module in modules()))
    assert set(resources()) <= read, sorted(map(str, set(resources()) - read))


def test_every_error_a_user_sees_is_a_social_reward_error():
    from social_reward.errors import SocialRewardError

    for module_name in modules():
        module = __import__(module_name, fromlist=["_"])
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, Exception)
                and value.__module__ == module_name
                and not name.startswith("_")
            ):
                assert issubclass(value, SocialRewardError), f"{module_name}.{name}"


def test_the_import_facts_see_lazy_imports_and_skip_type_checking_ones():
    """The deps computation reads imports inside functions (the CLI imports lazily)."""
    assert "social_reward.stages.pairs" in facts(CLI).imports
    validation = "social_reward.data.validation"
    report = "social_reward.data.validation_report"
    assert validation not in facts(report).imports  # imported under TYPE_CHECKING only
    assert report in facts(validation).imports
