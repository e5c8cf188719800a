"""Home: what the studio does, and where to go next."""

import streamlit as st

st.title("Zoo Studio")
st.write("Train a real neural network in your browser, watch it learn, look at the maths, draw a digit.")
