/* The C API from an installed tree: chanpool/transport.h (which includes channels.h) compiles as
 * C11, libchanpool_c.so links and loads, and its version is the headers' version. */
#include <chanpool/transport.h>

#include <stdio.h>
#include <string.h>

int main(void) {
  if (strcmp(chanpool_version(), CHANPOOL_VERSION_STRING) != 0) {
    fprintf(stderr, "c_consumer: library %s, headers %s\n", chanpool_version(), CHANPOOL_VERSION_STRING);
    return 1;
  }
  char job[32];
  size_t length = 0;
  const int rc = chanpool_virtual_node_job("consumer", 2, job, sizeof job, &length);
  if (rc != CHANPOOL_OK || strcmp(job, "consumer-n2") != 0 || length != 11) {
    fprintf(stderr, "c_consumer: chanpool_virtual_node_job: %s (%d)\n", chanpool_strerror(rc), rc);
    return 1;
  }
  printf("c_consumer: chanpool %s, C API ok\n", chanpool_version());
  return 0;
}
