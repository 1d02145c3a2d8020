import pytest
import torch

from r1lab.runtime.checkpoint import Checkpointer


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
