"""The command a step offers to copy (`y`) and `warroom runbook show` prints: its runnable block, else its first shell block."""

from __future__ import annotations

from markdown_it import MarkdownIt

from runbooks.model import Step

# Fenced blocks an operator pastes into a shell. An unlabelled block counts only when a step has
# no labelled one: authors often leave the language out, but also use bare fences for output.
SHELL_LANGUAGES = frozenset({"bash", "sh", "shell", "zsh", "fish", "console", "shell-session", "powershell", "pwsh", "ps1", "cmd", "bat"})
_md = MarkdownIt("commonmark")


def shell_block(text: str) -> str:
    """The first shell block of a step's explanation ("" when there is none)."""
    untyped = ""
    for token in _md.parse(text):
        if token.type != "fence":
            continue
        language = token.info.strip().split(" ", 1)[0].lower()
        if language in SHELL_LANGUAGES:
            return _without_prompts(token.content) if language in ("console", "shell-session") else token.content.strip()
        if not language and not untyped:
            untyped = token.content.strip()
    return untyped


def _without_prompts(content: str) -> str:
    """A `console` block's commands: the `$ ` lines without their prompt, not the output shown."""
    commands = [line.strip()[2:] for line in content.splitlines() if line.strip().startswith("$ ")]
    return "\n".join(commands) if commands else content.strip()


def step_command(step: Step, filled: str | None = None) -> str:
    """What `y` copies for `step`: its runnable command (`filled`, with earlier results in it,
    when the caller has them), a docker block as the `docker ...` command line it stands for;
    else the first shell block of its text. "" for a step with neither (a probe block is YAML
    for warroom, not a command)."""
    command = (filled if filled is not None else step.command).strip()
    if command:
        if step.block == "docker" and not command.lower().startswith("docker "):
            command = f"docker {command}"
        return command
    return shell_block(step.text)
