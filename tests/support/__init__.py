"""Test support code: real local control plane, fakes and helpers (never imported by the product)."""
