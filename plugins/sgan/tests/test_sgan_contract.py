"""The SGAN plugin's components pass gankit's contract suite."""

from gankit.testing import contract_suite

TestSGANContract = contract_suite("gankit-sgan")
