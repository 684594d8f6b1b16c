"""The tokenizer works offline and counts exactly like OpenAI's tiktoken."""

import hashlib

import pytest
import quicktok

from usage import tokens

SAMPLES = [
    "hello world",
    "Summarize the following text in three bullet points.",
    "Héllo wörld — naïve café, 日本語のテキスト, emojis 🎉🚀 and numbers 1234567.",
    "def f(x):\n    return x ** 2  # comment\n\n\t\ttabs",
    "user typed <|endoftext|> and <|endofprompt|> as plain text",
    "   leading spaces and trailing   ",
    "ALLCAPS Words MixedCase it's they're we've I'd",
]


def test_vocabulary_file_is_the_official_one(tmp_path, monkeypatch):
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    url = tokens._VOCABULARIES["o200k_base"][0]
    path = tokens.ensure_vocabulary("o200k_base")
    assert path.parent == tmp_path
    assert path.name == hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert digest == tokens._VOCABULARIES["o200k_base"][1]


@pytest.mark.parametrize("text", SAMPLES)
def test_counts_match_the_reference_ids(text):
    reference = quicktok.get_encoding("o200k_base").encode_ordinary(text)
    assert tokens.get_encoding().encode_ordinary(text) == list(reference)
    assert tokens.count_tokens(text) == len(reference)


def test_known_counts_and_model_mapping():
    assert tokens.count_tokens("hello world") == 2
    assert tokens.count_tokens("") == 0
    assert tokens.encoding_name_for_model("gpt-4o-mini") == "o200k_base"
    assert tokens.encoding_name_for_model("gpt-4-turbo") == "cl100k_base"
    assert tokens.encoding_name_for_model(None) == "o200k_base"
    cl100k = quicktok.get_encoding("cl100k_base").encode_ordinary(SAMPLES[2])
    assert tokens.count_tokens(SAMPLES[2], model="gpt-3.5-turbo") == len(cl100k)


def test_encoding_is_built_once():
    assert tokens.get_encoding() is tokens.get_encoding("o200k_base")


def test_message_framing_follows_openai_accounting():
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Hi", "name": "ann"},
        {"role": "user", "content": [{"type": "text", "text": "more"}, {"type": "image_url"}]},
    ]
    body = sum(tokens.count_tokens(t) for t in ["system", "You are helpful.", "user", "Hi"])
    body += tokens.count_tokens("user") + tokens.count_tokens("more")
    names = 1 + tokens.count_tokens("ann")
    expected = 3 * 3 + body + names + 3
    assert tokens.count_message_tokens(messages) == expected
