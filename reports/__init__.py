"""Reporters: each turns a finished Report into text. Writing files is one shared atomic function."""
