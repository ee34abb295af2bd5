"""Bounded mutation fuzzing: no mutated token ever raises or passes."""

from __future__ import annotations

import random

from tokens_support import AUDIENCE, PEER_X5T, SUBJECT

from trustproof.tokens import REASONS, BrokenTokens, TokenIssuer, TokenValidator
from trustproof.tokens._jose import b64url_decode, b64url_encode

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
NOISE = ALPHABET + '.=+/ \x00\n"{}é\u202e'
ROUNDS = 400


def mutate(token: str, rng: random.Random) -> str:
    head, body, sig = token.split(".")
    choice = rng.randrange(9)
    position = rng.randrange(len(token))
    if choice == 0:  # replace one character
        return token[:position] + rng.choice(NOISE) + token[position + 1 :]
    if choice == 1:  # delete one
        return token[:position] + token[position + 1 :]
    if choice == 2:  # insert one
        return token[:position] + rng.choice(NOISE) + token[position:]
    if choice == 3:  # truncate
        return token[:position]
    if choice == 4:  # swap two segments
        parts = [head, body, sig]
        i, j = rng.sample(range(3), 2)
        parts[i], parts[j] = parts[j], parts[i]
        return ".".join(parts)
    if choice == 5:  # flip one bit inside a decoded segment, re-encoded canonically
        index = rng.randrange(3)
        parts = [head, body, sig]
        raw = bytearray(b64url_decode(parts[index], "segment"))
        raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
        parts[index] = b64url_encode(bytes(raw))
        return ".".join(parts)
    if choice == 6:  # drop or duplicate the signature
        return f"{head}.{body}." if rng.random() < 0.5 else f"{head}.{body}.{sig}.{sig}"
    if choice == 7:  # change case of one letter
        return token[:position] + token[position].swapcase() + token[position + 1 :]
    return token + rng.choice(NOISE)  # trailing junk


def test_mutated_tokens_never_raise_and_never_pass(
    issuer: TokenIssuer, validator: TokenValidator, broken: BrokenTokens
) -> None:
    rng = random.Random(20300101)  # noqa: S311 - reproducible fuzzing, not secrets
    seeds = [
        issuer.issue(SUBJECT, AUDIENCE, roles=["reader"], cnf_x5t_s256=PEER_X5T).token.reveal(),
        broken.template(SUBJECT, AUDIENCE).valid().token.reveal(),
    ]
    for seed in seeds:
        assert validator.validate(seed, audience=AUDIENCE, peer_x5t_s256=PEER_X5T).ok
    tried = 0
    for round_ in range(ROUNDS):
        seed = seeds[round_ % len(seeds)]
        mutant = mutate(seed, rng)
        if mutant == seed:
            continue
        tried += 1
        result = validator.validate(mutant, audience=AUDIENCE, peer_x5t_s256=PEER_X5T)
        assert not result.ok, (round_, result)
        assert result.reason in REASONS
        assert result.reason != "error", (round_, result)
        assert mutant not in result.detail
    assert tried > ROUNDS * 0.9


def test_random_text_never_raises(validator: TokenValidator) -> None:
    rng = random.Random(7)  # noqa: S311 - reproducible fuzzing, not secrets
    for _ in range(200):
        text = "".join(rng.choice(NOISE) for _ in range(rng.randrange(0, 120)))
        result = validator.validate(text, audience=AUDIENCE)
        assert not result.ok
        assert result.reason in {"missing", "malformed"}
