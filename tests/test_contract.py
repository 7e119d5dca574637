"""gankit's built-in components pass the contract suite every plugin runs."""

from gankit.testing import contract_suite

TestBuiltinContract = contract_suite("gankit")
