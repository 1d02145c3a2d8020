"""Few-shot prompts: solved training examples before the question."""

from r1lab.eval.fewshot import demonstration, fewshot_prompts, shot_examples
from r1lab.tasks.arithmetic import ArithmeticTask
from r1lab.tasks.templates import render_prompt


def test_zero_shots_is_the_plain_prompt():
    assert fewshot_prompts(None, ArithmeticTask(), ["Compute 2+3"], "qa", 0, seed=1) == [render_prompt("qa", "Compute 2+3")]


def test_shots_are_solved_training_examples_in_the_models_layout():
    task = ArithmeticTask()
    (p,) = fewshot_prompts(None, task, ["Compute 2+3"], "qa", 3, seed=1)
    shots = shot_examples(task, 3, seed=1)
    assert len(shots) == 3 and all(e.meta["split"] == "train" for e in shots)
    assert p.count("Question: ") == 4 and p.endswith("Question: Compute 2+3\nAnswer:")
    for e in shots:
        demo = demonstration(task, e, "r1")
        assert f"Question: {e.prompt}\nAnswer: {demo}\n\n" in p
        assert task.verify(demo, e).correct  # the shown solutions are right
        assert demo.startswith("<think> ") and "</think>" in demo
    z = demonstration(task, shots[0], "r1zero")
    assert z.endswith(f"<answer> {shots[0].reference} </answer>") and task.verify(z, shots[0]).correct
    assert fewshot_prompts(None, task, ["q"], "qa", 3, seed=1) == fewshot_prompts(None, task, ["q"], "qa", 3, seed=1)


def test_tasks_without_worked_solutions_show_the_reference():
    from r1lab.tasks.general import GeneralTask

    task = GeneralTask()
    ex = shot_examples(task, 1, seed=0)[0]
    assert demonstration(task, ex, "r1") == f"<think> </think> The answer is {ex.reference}."
