"""Every shell block in README.md and docs/ is either run by the suite or says why not."""

from __future__ import annotations

from ..support.doc_blocks import shell_blocks, unlabelled_fences


def test_every_shell_block_is_runnable_or_says_why_it_is_not_run() -> None:
    blocks = shell_blocks()
    assert len(blocks) >= 10  # the parser finds the documents' blocks
    unmarked = [b.where for b in blocks if not b.runnable and not b.not_run_because]
    assert unmarked == [], (
        "mark each block ```sh runnable (tests/test_doc_commands.py runs it) or put "
        f"<!-- not run: why --> right above it: {unmarked}"
    )
    both = [b.where for b in blocks if b.runnable and b.not_run_because]
    assert both == []


def test_runnable_console_blocks_hold_commands() -> None:
    for block in shell_blocks():
        if block.runnable and block.language == "console":
            assert block.commands(), block.where


def test_every_fenced_block_names_its_language() -> None:
    # An unlabelled block could hold commands this check would never see.
    assert unlabelled_fences() == [], "label each block: ```sh, ```text, ```toml, ..."


def test_blocks_indented_under_a_list_item_are_found() -> None:
    indented = [b for b in shell_blocks() if b.where.startswith("docs/deploy.md")]
    assert len(indented) >= 5
    assert all(not b.text.startswith(" ") for b in indented)
