"""Zoo Studio: the Streamlit entry point. Page config, shared sidebar, navigation over pages/."""

import streamlit as st

st.set_page_config(page_title="Zoo Studio", page_icon="🧠", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
]

st.navigation(PAGES).run()
