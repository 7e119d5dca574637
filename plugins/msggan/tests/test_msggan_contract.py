"""The MSG-GAN plugin's components pass gankit's contract suite."""

from gankit.testing import contract_suite

TestMSGGANContract = contract_suite("gankit-msggan")
