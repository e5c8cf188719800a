"""The only zoo module that imports streamlit: session keys and cached shared resources."""

from __future__ import annotations

import streamlit as st

from zoo.store import ModelStore


@st.cache_resource
def model_store() -> ModelStore:
    """The local zoo, shared by every session of this server."""
    return ModelStore()
