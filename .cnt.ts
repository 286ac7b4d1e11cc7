import { MongoClient } from "mongodb";

const port = process.argv[2];
const c = new MongoClient(`mongodb://127.0.0.1:${port}/`, { serverSelectionTimeoutMS: 3000 });
await c.connect();
const dbs = await c.db().admin().listDatabases();
for (const d of dbs.databases)
  if (d.name.startsWith("chaos"))
    console.log(d.name, await c.db(d.name).collection("messages").countDocuments({}));
await c.close();
