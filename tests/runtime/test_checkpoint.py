import json

import pytest
import torch

from r1lab.errors import UserError
from r1lab.runtime import MetricLogger
from r1lab.runtime.checkpoint import Checkpointer, resume_latest


def _model(seed):
    torch.manual_seed(seed)
    return torch.nn.Linear(4, 3)


def test_save_load_prune(tmp_path):
    ck = Checkpointer(tmp_path / "ck", keep=2)
    m = _model(0)
    opt = torch.optim.AdamW(m.parameters(), lr=0.1)
    m(torch.randn(2, 4)).sum().backward()
    opt.step()
    for step in (1, 2, 3):
        ck.save(step, m, opt, extra={"note": step})
    assert [p.name for p in ck.all()] == ["step_00000002", "step_00000003"]
    m2, opt2 = _model(1), torch.optim.AdamW(_model(1).parameters(), lr=0.1)
    state = ck.load(ck.latest(), m2, opt2)
    assert state == {"step": 3, "extra": {"note": 3}}
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), m2.parameters()))


def test_failure_during_save_leaves_previous_checkpoint_usable(tmp_path, monkeypatch):
    ck = Checkpointer(tmp_path / "ck", keep=2)
    m = _model(0)
    ck.save(5, m)

    def disk_full(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError):
        ck.save(6, _model(1))
    monkeypatch.undo()
    assert ck.latest().name == "step_00000005"
    m2 = _model(2)
    assert ck.load(ck.latest(), m2)["step"] == 5
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), m2.parameters()))
    ck.save(7, m)  # the next save clears the leftover temp directory
    assert not list((tmp_path / "ck").glob(".tmp-*"))


def _cut(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def test_damaged_newest_checkpoint_falls_back_to_the_previous_with_a_warning(tmp_path, capsys):
    ck = Checkpointer(tmp_path / "ck", keep=3)
    good = _model(0)
    ck.save(2, good, torch.optim.AdamW(good.parameters(), lr=0.1), extra={"note": 2})
    ck.save(4, _model(1), extra={"note": 4})
    _cut(tmp_path / "ck" / "step_00000004" / "state.pt")
    log = MetricLogger(tmp_path / "metrics.jsonl")
    for step in range(4):
        log.log({"step": step, "loss": float(step)})
    with open(log.path, "a") as f:
        f.write('{"step": 4, "lo')  # a line cut by a kill mid-write
    m = _model(5)
    state = resume_latest(ck, m, torch.optim.AdamW(m.parameters(), lr=0.1), log, label="t")
    assert state == {"step": 2, "extra": {"note": 2}}
    assert all(torch.equal(a, b) for a, b in zip(good.parameters(), m.parameters()))
    out = capsys.readouterr()
    assert f"checkpoint {tmp_path / 'ck' / 'step_00000004'} is damaged" in out.err
    assert f"resuming from {tmp_path / 'ck' / 'step_00000002'}, the newest good checkpoint" in out.err
    assert f"{log.path}:5 is not a whole JSON line" in out.err
    assert [json.loads(line)["step"] for line in log.path.read_text().splitlines()] == [0, 1]


def test_every_checkpoint_damaged_stops_naming_the_newest(tmp_path):
    ck = Checkpointer(tmp_path / "ck", keep=2)
    ck.save(1, _model(0))
    ck.save(3, _model(0))
    for p in ck.all():
        _cut(p / "state.pt")
    with pytest.raises(UserError, match=r"every checkpoint in .*ck is damaged \(newest: .*step_00000003\); remove"):
        resume_latest(ck, _model(1), None)
