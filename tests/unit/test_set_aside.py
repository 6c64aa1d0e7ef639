"""storage/set_aside.py: which files are renamed aside, the placeholder left at the path, and how a
set-aside ends after the save (dropped, or the old file put back when the save raised unwritten)."""
from __future__ import annotations

import errno
import os
import stat

import pytest

from autolog.storage import set_aside as sa


@pytest.fixture
def saved(tmp_path):
    """A file as a save left it, and the stat its snapshot's read handle took."""
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"old weights")
    os.chmod(path, 0o604)
    return path, os.stat(path)


def test_a_plain_file_is_renamed_aside_and_an_empty_file_with_its_mode_takes_its_place(saved, tmp_path):
    path, opened = saved
    aside = sa.set_aside(str(path), opened, str(tmp_path / "staging" / "x.aside"))

    assert aside is not None
    assert (tmp_path / "staging" / "x.aside").read_bytes() == b"old weights"
    assert os.stat(tmp_path / "staging" / "x.aside").st_ino == opened.st_ino
    assert path.read_bytes() == b""
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o604


def test_after_a_save_that_wrote_the_old_file_is_dropped(saved, tmp_path):
    path, opened = saved
    aside = sa.set_aside(str(path), opened, str(tmp_path / "x.aside"))
    with open(path, "wb") as f:  # the save, as torch.save opens the path
        f.write(b"new weights")
    aside.settle(raised=False)

    assert path.read_bytes() == b"new weights"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o604
    assert not (tmp_path / "x.aside").exists()


def test_a_file_whose_copy_is_still_unread_stays_aside_after_the_save(saved, tmp_path):
    """Until the stager has read it (it removes it then), the old file keeps its name: a run killed
    meanwhile leaves the saved bytes where `autolog sync` finds them."""
    path, opened = saved
    aside = sa.set_aside(str(path), opened, str(tmp_path / "x.aside"), source_read=lambda: False)
    with open(path, "wb") as f:
        f.write(b"new weights")
    aside.settle(raised=False)

    assert path.read_bytes() == b"new weights"
    assert (tmp_path / "x.aside").read_bytes() == b"old weights"
    aside.copy_read()  # the stager, once the copy is read
    assert not (tmp_path / "x.aside").exists()
    aside.copy_read()  # told twice, or finding it gone: fine
    sa.remove_set_aside(str(tmp_path / "x.aside"))


@pytest.mark.parametrize("raised", [False, True])
def test_a_copy_read_while_the_save_runs_leaves_the_file_to_the_save(saved, tmp_path, raised):
    """The save may yet raise without writing, and then needs the old file back: the stager's
    copy_read removes nothing before settle, which removes it (the copy was read) or puts it back."""
    path, opened = saved
    read = [False]
    aside = sa.set_aside(str(path), opened, str(tmp_path / "x.aside"), source_read=lambda: read[0])
    read[0] = True
    aside.copy_read()
    assert (tmp_path / "x.aside").read_bytes() == b"old weights"
    if not raised:
        with open(path, "wb") as f:
            f.write(b"new weights")
    aside.settle(raised=raised)

    assert path.read_bytes() == (b"old weights" if raised else b"new weights")
    assert not (tmp_path / "x.aside").exists()


def test_a_save_that_raised_before_writing_gets_the_old_file_back_as_it_was(saved, tmp_path):
    path, opened = saved
    aside = sa.set_aside(str(path), opened, str(tmp_path / "x.aside"))
    aside.settle(raised=True)

    assert path.read_bytes() == b"old weights"
    assert os.stat(path).st_ino == opened.st_ino
    assert not (tmp_path / "x.aside").exists()


@pytest.mark.parametrize("copy_read", ["before the save ended", "after the save ended"])
def test_a_save_that_returned_without_writing_gets_the_old_file_back(saved, tmp_path, copy_read):
    """Keras' save(overwrite=False) asks before overwriting, and returns without writing when told not
    to: the old file stays, as without autolog (not the empty placeholder, which made the path exist)."""
    path, opened = saved
    read = [False]
    aside = sa.set_aside(str(path), opened, str(tmp_path / "x.aside"), source_read=lambda: read[0])
    if copy_read == "before the save ended":
        read[0] = True
        aside.copy_read()
    aside.settle(raised=False)
    read[0] = True
    aside.copy_read()

    assert path.read_bytes() == b"old weights"
    assert os.stat(path).st_ino == opened.st_ino
    assert not (tmp_path / "x.aside").exists()


def test_a_save_that_returned_with_the_path_removed_leaves_it_removed(saved, tmp_path):
    """Only a save that raised gets the old file back at an empty path: one that returned removed it."""
    path, opened = saved
    aside = sa.set_aside(str(path), opened, str(tmp_path / "x.aside"))
    os.remove(path)
    aside.settle(raised=False)

    assert not path.exists()
    assert not (tmp_path / "x.aside").exists()


def test_a_set_aside_whose_file_went_back_does_not_end_a_later_one_of_the_same_file(saved, tmp_path):
    """Two saves that raise unwritten while one copy runs set the same file aside twice, under one
    name. The stager tells the set-aside it knows of once its copy is read, which may be the first
    (the second was made and not yet handed over): that one must not remove the file the second
    needs to put back, or the checkpoint is left an empty file."""
    path, opened = saved
    first = sa.set_aside(str(path), opened, str(tmp_path / "x.aside"), source_read=lambda: False)
    first.settle(raised=True)
    second = sa.set_aside(str(path), opened, str(tmp_path / "x.aside"), source_read=lambda: False)
    assert second is not None
    first.copy_read()
    second.settle(raised=True)

    assert path.read_bytes() == b"old weights"
    assert not (tmp_path / "x.aside").exists()


@pytest.mark.parametrize("after", ["removed the path", "wrote a partial file"])
def test_a_save_that_raised_after_touching_the_path_keeps_what_it_left(saved, tmp_path, after):
    """A plain save that raised midway leaves a partial file (it had truncated the old one): the same."""
    path, opened = saved
    aside = sa.set_aside(str(path), opened, str(tmp_path / "x.aside"))
    if after == "removed the path":
        os.remove(path)
        aside.settle(raised=True)
        assert path.read_bytes() == b"old weights"  # nothing at the path: the old file is put back
    else:
        path.write_bytes(b"partial")
        aside.settle(raised=True)
        assert path.read_bytes() == b"partial"
    assert not (tmp_path / "x.aside").exists()


def test_files_that_do_not_qualify_are_left_alone(saved, tmp_path):
    path, opened = saved
    link = tmp_path / "link.pt"
    link.symlink_to(path)
    assert sa.set_aside(str(link), opened, str(tmp_path / "a.aside")) is None  # a symlink
    assert link.is_symlink()

    os.link(path, tmp_path / "second-name.pt")
    assert sa.set_aside(str(path), os.stat(path), str(tmp_path / "b.aside")) is None  # two names

    other = tmp_path / "other.pt"
    other.write_bytes(b"another file")
    assert sa.set_aside(str(other), opened, str(tmp_path / "c.aside")) is None  # not the file read
    assert not list(tmp_path.glob("*.aside"))
    assert path.read_bytes() == b"old weights" and other.read_bytes() == b"another file"


def test_a_rename_across_filesystems_fails_and_nothing_changes(saved, tmp_path, monkeypatch):
    path, opened = saved

    def cross_device(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(sa.os, "rename", cross_device)
    assert sa.set_aside(str(path), opened, str(tmp_path / "x.aside")) is None
    assert path.read_bytes() == b"old weights"


def test_a_placeholder_whose_mode_cannot_be_set_is_private(saved, tmp_path, monkeypatch):
    """fchmod refused (a filesystem without modes): the empty file is 0o600, never looser than the old one."""
    path, opened = saved

    def refused(fd, mode):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(sa.os, "fchmod", refused)
    aside = sa.set_aside(str(path), opened, str(tmp_path / "x.aside"))

    assert aside is not None and aside.placeholder == (os.stat(path).st_dev, os.stat(path).st_ino)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


@pytest.mark.parametrize("staging", ["/store/.autolog-staging/1f2e", "/store/.autolog-staging/1f2e/"])
def test_the_file_set_aside_is_named_after_its_staging_folder_beside_it(staging):
    """`<staging>.aside` is read by `autolog sync` of a later run (maybe another autolog version): its name
    and place are part of the store's layout."""
    assert sa.aside_path(staging) == "/store/.autolog-staging/1f2e.aside"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another group takes root here")
def test_the_placeholder_keeps_the_owner_and_group_of_the_old_file(saved, tmp_path):
    """An overwrite keeps the file's owner and group; in a shared folder a group that lost its file
    would lose the checkpoint."""
    path, _ = saved
    os.chown(path, 1, 1)
    aside = sa.set_aside(str(path), os.stat(path), str(tmp_path / "x.aside"))
    assert aside is not None
    assert (os.stat(path).st_uid, os.stat(path).st_gid) == (1, 1)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o604


def test_an_owner_that_cannot_be_kept_leaves_the_old_file_in_place(saved, tmp_path, monkeypatch):
    """Another user's file in a shared folder: the save then waits for the copy, as without a rename."""
    path, opened = saved

    def refused(fd, uid, gid):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "fchown", refused)
    monkeypatch.setattr(os, "fstat", lambda fd, real=os.fstat: _stat_owned_by(real(fd), opened.st_uid + 1))
    assert sa.set_aside(str(path), opened, str(tmp_path / "x.aside")) is None
    assert path.read_bytes() == b"old weights" and os.stat(path).st_ino == opened.st_ino
    assert not (tmp_path / "x.aside").exists()


def _stat_owned_by(st: os.stat_result, uid: int) -> os.stat_result:
    """st as if its file were uid's (a file created here belongs to this process's user)."""
    fields = list(st[:10])
    fields[4] = uid
    return os.stat_result(fields, {"st_mtime_ns": st.st_mtime_ns, "st_ctime_ns": st.st_ctime_ns,
                                   "st_atime_ns": st.st_atime_ns})


def test_a_file_with_an_access_list_is_not_set_aside(saved, tmp_path, monkeypatch):
    """A new file would not get the old one's ACL (the listing is faked: setting a real ACL needs acl tools)."""
    path, opened = saved
    monkeypatch.setattr(sa, "_attributes", lambda p: {"user.note": b"x", "system.posix_acl_access": b"acl"}
                        if p == str(path) else {})
    assert sa.set_aside(str(path), opened, str(tmp_path / "x.aside")) is None
    assert os.stat(path).st_ino == opened.st_ino


def test_the_placeholder_keeps_the_extended_attributes_of_the_old_file(saved, tmp_path):
    """An overwrite keeps the file's `user.*` attributes (where it came from, a checksum a tool keeps):
    the new file that stands in for it gets them too."""
    path, opened = saved
    os.setxattr(path, "user.origin", b"experiment-42")
    aside = sa.set_aside(str(path), os.stat(path), str(tmp_path / "x.aside"))
    assert aside is not None
    assert os.getxattr(path, "user.origin") == b"experiment-42"
    with open(path, "wb") as f:
        f.write(b"new weights")
    aside.settle(raised=False)

    assert os.listxattr(path) == ["user.origin"]
    assert os.getxattr(path, "user.origin") == b"experiment-42"


def test_an_attribute_that_cannot_be_given_leaves_the_old_file_in_place(saved, tmp_path, monkeypatch):
    path, opened = saved
    os.setxattr(path, "user.origin", b"experiment-42")

    def refused(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(sa.os, "setxattr", refused)
    assert sa.set_aside(str(path), os.stat(path), str(tmp_path / "x.aside")) is None
    assert os.stat(path).st_ino == opened.st_ino
    assert path.read_bytes() == b"old weights"
    assert not (tmp_path / "x.aside").exists()
    assert sa.unsettled_here() is None
