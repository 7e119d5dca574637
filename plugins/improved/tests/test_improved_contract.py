"""The plugin's components pass gankit's contract suite."""

from gankit.testing import contract_suite

TestImprovedContract = contract_suite("gankit-improved")
