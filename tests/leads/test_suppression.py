"""The suppression list's two functions, as the rest of LeadFunnel calls them."""

import pytest

from leads.services.suppression import suppressed_emails, suppression_add

pytestmark = pytest.mark.django_db


def test_suppressed_addresses_are_found_whatever_their_letter_case():
    assert suppression_add(emails=["Ann@Acme.example"], reason="hard_bounce") == 1
    assert suppressed_emails(["ann@acme.example", "ANN@ACME.EXAMPLE", "bob@acme.example"]) == {
        "ann@acme.example",
        "ANN@ACME.EXAMPLE",
    }


def test_adding_an_address_twice_adds_it_once():
    suppression_add(emails=["ann@acme.example"], reason="complaint")
    assert suppression_add(emails=["ann@acme.example", "bob@acme.example"], reason="unsubscribed") == 1
    assert suppressed_emails(["ann@acme.example", "bob@acme.example"]) == {"ann@acme.example", "bob@acme.example"}


def test_nothing_is_suppressed_at_first():
    assert suppressed_emails(["ann@acme.example"]) == set()
