// Reads zip files entry by entry with java.util.zip.ZipInputStream, as Druid's S3 and GCS pullers
// do (apache/druid processing/src/main/java/org/apache/druid/utils/CompressionUtils.java,
// unzip(InputStream, File): new ZipInputStream(in), getNextEntry(), copy, closeEntry()).
// ZipInputStream checks each entry's CRC and sizes itself (ZipException "invalid entry CRC",
// "invalid entry size", "only DEFLATED entries can have EXT descriptor").
//
// Usage: java ZipCheck.java FILE.zip...   prints FILE<TAB>NAME<TAB>SIZE<TAB>CRC32 (hex) per entry;
// exits 1 with the exception on stderr when a file cannot be read the way Druid reads it.
import java.io.BufferedInputStream;
import java.io.FileInputStream;
import java.io.InputStream;
import java.util.zip.CRC32;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;

public class ZipCheck {
  public static void main(String[] args) throws Exception {
    for (String path : args) {
      try (InputStream in = new BufferedInputStream(new FileInputStream(path));
           ZipInputStream zipIn = new ZipInputStream(in)) {
        ZipEntry entry;
        int entries = 0;
        byte[] buf = new byte[1 << 16];
        while ((entry = zipIn.getNextEntry()) != null) {
          CRC32 crc = new CRC32();
          long size = 0;
          int n;
          while ((n = zipIn.read(buf)) != -1) {
            crc.update(buf, 0, n);
            size += n;
          }
          zipIn.closeEntry();
          System.out.printf("%s\t%s\t%d\t%08x%n", path, entry.getName(), size, crc.getValue());
          entries++;
        }
        if (entries == 0) {
          throw new java.util.zip.ZipException("no entries");
        }
      } catch (Exception e) {
        System.err.println(path + ": " + e);
        System.exit(1);
      }
    }
  }
}
