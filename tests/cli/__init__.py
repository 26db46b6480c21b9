"""Tests that drive the mmcli command line in-process, one module per command."""
