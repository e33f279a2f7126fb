"""The platform's own room: the commands that start MedLoop (``run_platform``, the DICOM
listener ``dicom_listener``) and seed its demo (``seed_demo``, :mod:`medloop.platform.demo`).
It may use every app; no app uses it."""
