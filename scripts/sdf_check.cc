// Loads SDF files with the real SDFormat parser (libsdformat) and prints its errors.
// Build: g++ -std=c++17 scripts/sdf_check.cc -o sdf_check $(pkg-config --cflags --libs sdformat12)
// Run:   ./sdf_check world.sdf [more.sdf ...]   (exit 1 if any file has errors)
// test/sim/test_sdf.py builds it and checks every world `robomr sim export-sdf` writes.
#include <iostream>

#include <sdf/sdf.hh>

int main(int argc, char **argv) {
  int failed = 0;
  for (int i = 1; i < argc; ++i) {
    sdf::Root root;
    const sdf::Errors errors = root.Load(argv[i]);
    for (const auto &error : errors) {
      std::cout << argv[i] << ": error: " << error.Message() << "\n";
    }
    if (!errors.empty()) {
      ++failed;
      continue;
    }
    const sdf::World *world = root.WorldByIndex(0);
    std::cout << argv[i] << ": ok: SDF " << root.Version() << ", world "
              << (world ? world->Name() : "-") << ", "
              << (world ? world->ModelCount() : 0) << " models\n";
  }
  return failed ? 1 : 0;
}
