//! Artifact paths (filled in by the artifact work).
