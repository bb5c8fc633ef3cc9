// The system's ELF files the ld.so and ldd sweeps compare with the real
// tools: every regular file (not a symlink) under /usr/bin, /usr/sbin,
// /usr/lib/x86_64-linux-gnu (recursive) and /usr/libexec (recursive) whose
// e_ident holds the ELF magic and ELFDATA2LSB, chosen from its raw bytes read
// with pread(), not with procforge's ELF reader, so a file the reader wrongly
// refuses is a failure instead of a file a sweep never sees.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "procforge/result.hpp"

namespace procforge::testsupport {

struct Candidate {
  std::string path;
  // ET_EXEC without PT_DYNAMIC (a static non-PIE executable), from the raw
  // bytes. ld.so run as a command on one maps it at its fixed address and
  // crashes (SIGSEGV, observed on glibc 2.36): there is no search to compare.
  bool static_exec = false;
  bool elf32 = false;  // ELFCLASS32 (only with system_elf_files(true))
};

// ELFCLASS64 files (ELFCLASS32 too with ELF32_TOO), sorted by path, each
// with whether it is a static ET_EXEC (e_type and the program headers'
// p_type, read the same way).
std::vector<Candidate> system_elf_files(bool elf32_too = false);

std::optional<std::vector<std::uint8_t>> read_whole(const std::string& path);

// What procforge's ELF reader says of a candidate: an error when it refuses a
// file ld.so was asked about, else whether it has DT_AUDIT/DT_DEPAUDIT (a
// trace of it, by ld.so or ldd, would run its audit module's code).
Result<bool> read_audit(const std::vector<std::uint8_t>& bytes);

}  // namespace procforge::testsupport
