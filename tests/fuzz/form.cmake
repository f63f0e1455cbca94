# bot/form.c: the application/x-www-form-urlencoded decoder, on its own
# (pure code: the fuzz build need not compile the rest of the bot for it).
if(NOMATRON_FUZZ)
  add_library(nm_fuzz_form STATIC ${PROJECT_SOURCE_DIR}/bot/form.c)
  target_include_directories(nm_fuzz_form PUBLIC ${PROJECT_SOURCE_DIR}/bot)
endif()
nm_fuzz_target(fuzz_form ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_form.c nm_fuzz_form)
