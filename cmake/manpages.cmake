# cmake -DPROCFORGE=... -DOUT=DIR -DSUBCOMMANDS=a,b -P manpages.cmake: the
# manual pages (`procforge manpage [SUBCOMMAND]`) and shell completions
# (`procforge completion SHELL`) under OUT/man, OUT/bash and OUT/zsh.
function(generate file)
  execute_process(COMMAND ${PROCFORGE} ${ARGN} OUTPUT_FILE ${file} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "procforge ${ARGN} failed (${rc})")
  endif()
endfunction()
file(MAKE_DIRECTORY ${OUT}/man ${OUT}/bash ${OUT}/zsh)
generate(${OUT}/man/procforge.1 manpage)
string(REPLACE "," ";" subcommands "${SUBCOMMANDS}")
foreach(sub ${subcommands})
  generate(${OUT}/man/procforge-${sub}.1 manpage ${sub})
endforeach()
generate(${OUT}/bash/procforge completion bash)
generate(${OUT}/zsh/_procforge completion zsh)
