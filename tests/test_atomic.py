import pytest

from snn.atomic import atomic_open, atomic_path, write_atomic


def test_write_atomic_replaces_the_target_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    write_atomic(target, "new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓"
    write_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "ckpt.pt"
    target.write_bytes(b"good")
    with pytest.raises(RuntimeError, match="interrupted"):
        with atomic_open(target, "wb", fsync=True) as handle:
            handle.write(b"half")
            raise RuntimeError("interrupted")
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


def test_atomic_path_gives_a_sibling_with_the_requested_suffix(tmp_path):
    target = tmp_path / "plot.png"
    with atomic_path(target, suffix=".png") as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png" and tmp != target
        assert not target.exists()  # nothing visible under the final name until the write completes
        tmp.write_bytes(b"png")
    assert target.read_bytes() == b"png" and not tmp.exists()


def _dead_pid() -> int:
    """The id of a process that has exited (reaped), so no live process owns it right now."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_temporary_names_carry_the_writers_pid_and_host(tmp_path):
    import os

    with atomic_path(tmp_path / "last.pt") as tmp:
        assert tmp.name.startswith(f".last.pt.{os.getpid()}-")
        assert tmp.name.endswith(".tmp")
        tmp.write_bytes(b"x")


def test_stale_temps_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    import os

    from snn.atomic import _host, remove_stale_temps

    dead, host = _dead_pid(), _host()
    stale = [tmp_path / f".last.pt.{dead}-{host}.abcd1234.tmp", tmp_path / f".best.pt.{dead}-{host}.zz9_abcd.tmp"]
    live = tmp_path / f".last.pt.{os.getpid()}-{host}.abcd1234.tmp"  # this very process is writing it
    other_host_fresh = tmp_path / f".last.pt.{dead}-elsewhere.abcd1234.tmp"
    unrelated = [tmp_path / "last.pt", tmp_path / ".hidden", tmp_path / f".notes.txt.{dead}-{host}.abcd1234.tmp"]
    for p in stale + [live, other_host_fresh] + unrelated:
        p.write_bytes(b"x")
    removed = set(remove_stale_temps(tmp_path, "*.pt"))
    assert removed == set(stale)
    assert all(p.exists() for p in [live, other_host_fresh] + unrelated)


def test_temps_without_a_checkable_owner_go_only_when_old(tmp_path):
    import os
    import time

    from snn.atomic import remove_stale_temps

    old_unowned = tmp_path / ".cache.frames.k3j_x9q2.tmp"  # the name format before owners were recorded
    new_unowned = tmp_path / ".other.frames.ab12cd34.tmp"
    other_host_old = tmp_path / ".cache.frames.4242-elsewhere.ab12cd34.tmp"
    for p in (old_unowned, new_unowned, other_host_old):
        p.write_bytes(b"x")
    two_days_ago = time.time() - 2 * 86400
    os.utime(old_unowned, (two_days_ago, two_days_ago))
    os.utime(other_host_old, (two_days_ago, two_days_ago))
    assert set(remove_stale_temps(tmp_path, "*.frames")) == {old_unowned, other_host_old}
    assert new_unowned.exists()


def test_a_killed_writer_leaves_a_temp_that_the_next_start_removes(tmp_path):
    import signal
    import subprocess
    import sys

    from snn.atomic import remove_stale_temps

    script = (
        "import sys, time\n"
        "from snn.atomic import atomic_open\n"
        f"with atomic_open({str(tmp_path / 'last.pt')!r}, 'wb') as f:\n"
        "    f.write(b'half'); f.flush(); print('writing', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".last.pt.")]
    assert len(left) == 1
    assert remove_stale_temps(tmp_path, "last.pt") == []  # the writer is alive: its file stays
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert left[0].exists()  # the leak this cleans up
    assert remove_stale_temps(tmp_path, "last.pt") == left
    assert list(tmp_path.iterdir()) == []
