"""Prompt templates: files in prompts/, sandboxed rendering, clear errors before any request."""
import pytest

from callflows.errors import PromptError
from callflows.prompts import available_templates, load_template, render
from callflows.sentiment import DEFAULT_QUESTIONS, example_context


def test_sentiment_template_renders_transcript_first_and_every_question():
    """The shipped template puts the speaker-labelled transcript before the task and lists each question."""
    text = render(load_template("sentiment"), example_context(DEFAULT_QUESTIONS))
    assert text.index("Speaker A: Hello, how can I help?") < text.index("You are an expert")
    for q in DEFAULT_QUESTIONS:
        assert q.question in text
    assert '"answer_5"' in text
    assert "sentiment" in available_templates()


def test_inline_template_text_is_accepted():
    """Template text (not a name) is used as is, with the same inputs."""
    text = render(load_template("Lines: {{ lines | length }}\n{{ transcript_block }}"), example_context(DEFAULT_QUESTIONS))
    assert text.startswith("Lines: 2\nTranscript of a recorded call") and "\n1 [00:00] Speaker A: Hello" in text


def test_unknown_template_name_names_the_choices():
    """An unknown template name fails with the name and the templates that exist."""
    with pytest.raises(PromptError, match=r"unknown prompt template 'no_such_prompt'.*sentiment"):
        load_template("no_such_prompt")


def test_syntax_error_reports_line():
    """A template with a syntax error fails with the line number."""
    with pytest.raises(PromptError, match=r"syntax error on line 2"):
        render(load_template("ok\n{{ lines | }}\n"), example_context(DEFAULT_QUESTIONS))


def test_undefined_variable_is_an_error_and_lists_available_variables():
    """StrictUndefined: a misspelt variable is an error, not an empty string."""
    with pytest.raises(PromptError, match=r"undefined variable.*'speaker_lnes'.*Variables available: .*transcript_block"):
        render(load_template("{{ speaker_lnes }}\n"), example_context(DEFAULT_QUESTIONS))


@pytest.mark.parametrize("attack", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ lines.__class__.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
])
def test_sandbox_refuses_python_internals(attack):
    """Reaching Python internals from a template is refused by the sandbox (or is undefined)."""
    with pytest.raises(PromptError):
        render(load_template(attack + "\n"), example_context(DEFAULT_QUESTIONS))


def test_templates_cannot_include_files():
    """There is no loader: a template cannot read files through include/import."""
    with pytest.raises(PromptError, match="cannot read files"):
        render(load_template("{% include '/etc/passwd' %}\n"), example_context(DEFAULT_QUESTIONS))
