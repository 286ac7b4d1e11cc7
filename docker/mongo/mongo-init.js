// Makes mongo-1..3 the replica set rs0 unless they already are one, then waits for a primary.
// Run by the mongo-init job of docker/compose.yaml: `mongosh --host mongo-1 mongo-init.js`.
const members = ["mongo-1:27017", "mongo-2:27017", "mongo-3:27017"].map((host, _id) => ({ _id, host }));

try {
  rs.status();
  print("rs0 is already initiated");
} catch (err) {
  if (err.codeName !== "NotYetInitialized") throw err;
  rs.initiate({ _id: "rs0", members });
  print("rs0 initiated");
}

for (let i = 0; i < 120; i++) {
  if (db.hello().isWritablePrimary || rs.status().members.some((m) => m.stateStr === "PRIMARY")) {
    print("rs0 has a primary");
    quit(0);
  }
  sleep(1000);
}
print("rs0 has no primary after 120 s");
quit(1);
