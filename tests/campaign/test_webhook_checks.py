"""The campaign's webhook checks can fail: each is shown a world where its promise is broken."""

from collections import Counter

from tools.chaos.webhook_checks import WebhookFacts, check_webhooks

E1, E2, E3 = "evt_" + "a" * 24, "evt_" + "b" * 24, "evt_" + "c" * 24


def held(facts: WebhookFacts) -> dict[str, bool]:
    return {p.name.split(": ", 1)[1]: p.held for p in check_webhooks(facts)}


def test_every_event_delivered_once_after_retries_holds() -> None:
    facts = WebhookFacts(
        written=[E1, E2],
        accepted=Counter({E1: 1, E2: 1}),
        received=Counter({E1: 3, E2: 1}),  # E1 failed twice first: retries, not duplicates
        recorded=Counter({E1: 3, E2: 1}),
    )
    assert all(held(facts).values())


def test_a_lost_event_breaks_the_first_promise() -> None:
    facts = WebhookFacts(
        written=[E1, E2],
        accepted=Counter({E1: 1}),
        received=Counter({E1: 1, E2: 9}),
        recorded=Counter({E1: 1, E2: 9}),
    )
    result = held(facts)
    assert result["events written = events delivered (0 lost)"] is False
    assert result["0 duplicates beyond retries"] is True


def test_an_event_delivered_that_was_never_written_breaks_it_too() -> None:
    facts = WebhookFacts(written=[E1], accepted=Counter({E1: 1, E3: 1}), received=Counter({E1: 1, E3: 1}))
    assert held(facts)["events written = events delivered (0 lost)"] is False


def test_nothing_written_is_not_a_pass() -> None:
    assert held(WebhookFacts(written=[]))["events written = events delivered (0 lost)"] is False


def test_an_accepted_duplicate_with_every_try_recorded_is_a_double() -> None:
    facts = WebhookFacts(
        written=[E1], accepted=Counter({E1: 2}), received=Counter({E1: 2}), recorded=Counter({E1: 2})
    )
    assert held(facts)["0 duplicates beyond retries"] is False


def test_a_duplicate_from_an_unrecorded_try_is_explained() -> None:
    # A worker killed between the POST and the record: the try is made again, same webhook-id.
    facts = WebhookFacts(
        written=[E1], accepted=Counter({E1: 2}), received=Counter({E1: 2}), recorded=Counter({E1: 1})
    )
    assert held(facts)["0 duplicates beyond retries"] is True
    facts.accepted[E1] = 3
    assert held(facts)["0 duplicates beyond retries"] is False


def test_an_unverified_signature_breaks_the_third_promise() -> None:
    facts = WebhookFacts(
        written=[E1],
        accepted=Counter({E1: 1}),
        received=Counter({E1: 1}),
        recorded=Counter({E1: 1}),
        unverified=1,
    )
    assert held(facts)["every signature verifies (standardwebhooks)"] is False
