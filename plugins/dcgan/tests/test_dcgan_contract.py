"""The DCGAN plugin's components pass gankit's contract suite."""

from gankit.testing import contract_suite

TestDCGANContract = contract_suite("gankit-dcgan")
