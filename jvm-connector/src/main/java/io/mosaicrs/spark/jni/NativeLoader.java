package io.mosaicrs.spark.jni;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Locale;

/**
 * Loads the mosaicrs native library once per JVM (per class loader).
 *
 * <p>By default the library is the one inside the connector jar, at {@link
 * #RESOURCE}; it is copied to a temp file, loaded, and the temp file is
 * deleted right away (the loaded mapping stays valid), so nothing is left
 * behind. The system property {@value #LIBRARY_PROPERTY} names a library built
 * by hand instead, e.g. {@code -Dmosaicrs.native.lib=target/release/libmosaicrs_jni.so}.
 *
 * <p>A failure is remembered and reported again, with its original reason, on
 * every later call.
 */
public final class NativeLoader {
  /** System property naming a native library file to load instead of the bundled one. */
  public static final String LIBRARY_PROPERTY = "mosaicrs.native.lib";

  /** Where the connector jar carries the library for the one platform it ships. */
  public static final String RESOURCE = "/native/linux-x86_64/libmosaicrs_jni.so";

  private static boolean loaded;
  private static MosaicrsInternalException failure;

  private NativeLoader() {}

  /** Loads the library if this class loader has not yet; throws if it cannot. */
  public static synchronized void load() {
    if (loaded) {
      return;
    }
    // Executors reach native code without going through the data source.
    SparkLineCheck.verify();
    if (failure != null) {
      throw new MosaicrsInternalException(failure.getMessage(), failure);
    }
    try {
      String override = System.getProperty(LIBRARY_PROPERTY);
      if (override != null && !override.isEmpty()) {
        loadFile(new File(override));
      } else {
        loadBundled();
      }
      loaded = true;
    } catch (MosaicrsInternalException e) {
      failure = e;
      throw e;
    } catch (IOException | UnsatisfiedLinkError | SecurityException e) {
      failure = new MosaicrsInternalException("cannot load the mosaicrs native library: " + e, e);
      throw failure;
    }
  }

  private static void loadFile(File file) {
    if (!file.isFile()) {
      throw new MosaicrsInternalException(
          "-D" + LIBRARY_PROPERTY + " names " + file + ", which is not a file");
    }
    System.load(file.getAbsolutePath());
  }

  private static void loadBundled() throws IOException {
    String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
    String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
    boolean supported = os.startsWith("linux") && (arch.equals("amd64") || arch.equals("x86_64"));
    if (!supported) {
      throw new MosaicrsInternalException(
          "the mosaicrs connector jar carries a native library for linux-x86_64 only, this JVM "
              + "runs on "
              + os
              + "/"
              + arch
              + "; build the library with `cargo build --release -p mosaicrs-jni` and point -D"
              + LIBRARY_PROPERTY
              + " at it");
    }
    Path temp = Files.createTempFile("libmosaicrs_jni-", ".so");
    try (InputStream in = NativeLoader.class.getResourceAsStream(RESOURCE)) {
      if (in == null) {
        throw new MosaicrsInternalException(
            "the connector jar has no " + RESOURCE + "; rebuild it with `gradle jar`");
      }
      Files.copy(in, temp, StandardCopyOption.REPLACE_EXISTING);
      System.load(temp.toAbsolutePath().toString());
    } finally {
      Files.deleteIfExists(temp);
    }
  }
}
