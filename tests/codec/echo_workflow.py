"""A minimal workflow whose input and result carry contact details, for codec tests on a real server."""

from dataclasses import dataclass

from temporalio import workflow


@dataclass
class ContactInput:
    email: str
    phone: str


@workflow.defn
class EchoContactWorkflow:
    @workflow.run
    async def run(self, contact: ContactInput) -> str:
        return f"code sent to {contact.email} and {contact.phone}"
