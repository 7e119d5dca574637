"""The SAGAN plugin's components pass gankit's contract suite."""

from gankit.testing import contract_suite

TestSAGANContract = contract_suite("gankit-sagan")
