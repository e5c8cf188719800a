"""The faces of the zoo: the Streamlit pages' helpers (the only Streamlit importer), charts, the CLI
and the doctor.
"""
