nm_fuzz_target(fuzz_audit_export ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_audit_export.c nm_audit)
